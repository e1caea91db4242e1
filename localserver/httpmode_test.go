package localserver_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"synctray/internal/failure"
	"synctray/internal/testsupport"
	"synctray/internal/testsupport/idemserver"
	"synctray/localserver"
	"synctray/localserver/clock"
	"synctray/localserver/httpup"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

func startHTTPHost(t *testing.T, upURL string, cfg localserver.Config) *env {
	t.Helper()
	cfg.UpstreamURL, cfg.UpstreamProtocol = upURL, localserver.ProtocolHTTP
	if cfg.Sync.MaxBackoff == 0 {
		cfg.Sync.MaxBackoff = time.Second
	}
	if cfg.Sync.ProbeEvery == 0 {
		cfg.Sync.ProbeEvery = 100 * time.Millisecond
	}
	return startHost(t, cfg)
}

// write sends a page's write to /upstream/<path>.
func (e *env) write(method, path, body, key string, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	h := map[string]string{"Idempotency-Key": key}
	for k, v := range hdr {
		h[k] = v
	}
	var b any
	if body != "" {
		b = body
	}
	return e.req(method, "/upstream"+path, b, h)
}

func TestHTTPMode(t *testing.T) {
	t.Run("a write gets the upstream's own answer when it comes within the wait", func(t *testing.T) {
		up := idemserver.Start(t)
		e := startHTTPHost(t, up.URL+"/api/v2", localserver.Config{})
		key := testsupport.NewKey()
		resp, data := e.write("POST", "/todos?list=home", `{"title":"milk"}`, key, nil)
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/api/v2/todos/1" {
			t.Fatalf("answer = %d %v %s, want the upstream's 201 with its Location", resp.StatusCode, resp.Header, data)
		}
		if resp.Header.Get("Synctray-Action") == "" || resp.Header.Get("Synctray-State") != "synced" {
			t.Errorf("headers %v, want Synctray-Action and Synctray-State: synced", resp.Header)
		}
		if !strings.Contains(string(data), `"received":{"title":"milk"}`) {
			t.Errorf("body = %s, want the upstream's", data)
		}
		got := up.Applied()
		if len(got) != 1 || got[0].Key != key || got[0].Path != "/api/v2/todos?list=home" || got[0].Header.Get("Content-Type") != "application/json" {
			t.Fatalf("applied = %+v, want one POST /api/v2/todos?list=home with its key and type", got)
		}
		if auth := got[0].Header.Get("Authorization"); auth != "" {
			t.Errorf("the page's Authorization reached the upstream: %q", auth)
		}
	})

	t.Run("Prefer: respond-async answers 202 with the action right after the commit", func(t *testing.T) {
		up := idemserver.Start(t)
		e := startHTTPHost(t, up.URL, localserver.Config{})
		resp, data := e.write("PUT", "/todos/7", `{"title":"eggs"}`, testsupport.NewKey(), map[string]string{"Prefer": "respond-async"})
		var body struct {
			Queued string        `json:"queued"`
			Action outbox.Action `json:"action"`
		}
		json.Unmarshal(data, &body)
		if resp.StatusCode != http.StatusAccepted || body.Queued != "host" || body.Action.Type != "http" {
			t.Fatalf("answer = %d %s, want 202 with the http action", resp.StatusCode, data)
		}
		testsupport.WaitFor(t, "replayed", func() bool { return len(up.Applied()) == 1 })
		if a := up.Applied()[0]; a.Method != "PUT" || a.Path != "/todos/7" {
			t.Fatalf("applied %+v", a)
		}
	})

	t.Run("the same key and request is one action; the same key with another request is refused", func(t *testing.T) {
		up := idemserver.Start(t)
		e := startHTTPHost(t, up.URL, localserver.Config{})
		key := testsupport.NewKey()
		r1, _ := e.write("POST", "/todos", `{"title":"a"}`, key, nil)
		r2, _ := e.write("POST", "/todos", `{"title":"a"}`, key, nil)
		if r1.StatusCode != 201 || r2.StatusCode != 201 || r1.Header.Get("Synctray-Action") != r2.Header.Get("Synctray-Action") {
			t.Fatalf("answers %d/%d, actions %s/%s: want one action answered twice", r1.StatusCode, r2.StatusCode,
				r1.Header.Get("Synctray-Action"), r2.Header.Get("Synctray-Action"))
		}
		r3, data := e.write("POST", "/todos", `{"title":"b"}`, key, nil)
		if r3.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), "key_conflict") {
			t.Fatalf("reused key = %d %s, want 422 key_conflict", r3.StatusCode, data)
		}
		if n := len(up.Applied()); n != 1 {
			t.Fatalf("upstream applied %d, want 1", n)
		}
	})

	t.Run("host-held credentials reach the upstream and never the page", func(t *testing.T) {
		up := idemserver.Start(t)
		hdr, err := localserver.ParseHeaderFile("# secrets\nAuthorization: Bearer s3cret\nX-Api-Key: k1\n")
		if err != nil {
			t.Fatal(err)
		}
		e := startHTTPHost(t, up.URL, localserver.Config{UpstreamHeaders: hdr})
		resp, data := e.write("POST", "/todos", `{"title":"x"}`, testsupport.NewKey(), map[string]string{"Cookie": "session=page"})
		if resp.StatusCode != 201 {
			t.Fatalf("answer %d %s", resp.StatusCode, data)
		}
		got := up.Applied()[0].Header
		if got.Get("Authorization") != "Bearer s3cret" || got.Get("X-Api-Key") != "k1" || got.Get("Cookie") != "" {
			t.Fatalf("upstream saw %v, want the host's credentials and no page cookie", got)
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if strings.Contains(v, "s3cret") {
					t.Fatalf("the page got the credential in %s", k)
				}
			}
		}
		if strings.Contains(string(data), "s3cret") {
			t.Fatal("the page got the credential in the body")
		}
	})

	t.Run("writes while the upstream is down are queued and replayed in order, once", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		e := startHTTPHost(t, "http://"+addr, localserver.Config{})
		var keys []string
		for i := range 20 {
			k := testsupport.NewKey()
			keys = append(keys, k)
			resp, data := e.write("POST", "/todos", fmt.Sprintf(`{"n":%d}`, i), k, map[string]string{"Prefer": "wait=0"})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("write %d = %d %s, want 202 queued", i, resp.StatusCode, data)
			}
		}
		testsupport.WaitFor(t, "offline", func() bool { return e.status().State == syncer.StateOffline })
		up := idemserver.StartAt(t, addr)
		testsupport.WaitFor(t, "all 20 replayed", func() bool { return len(up.Applied()) == 20 })
		testsupport.WaitFor(t, "all synced", func() bool { return e.status().Counts[outbox.Synced] == 20 })
		var got []string
		for _, r := range up.Applied() {
			got = append(got, r.Key)
		}
		if !slices.Equal(got, keys) {
			t.Fatalf("applied in order %v, want %v", got, keys)
		}
	})
}

func TestHTTPModeFailurePolicy(t *testing.T) {
	cases := []struct {
		name   string
		fault  idemserver.Fault
		state  string // while the fault lasts
		code   string
		failed bool   // the write fails for good (and later writes go on)
		reason string // in its last_error
	}{
		{name: "401 blocks", fault: idemserver.Fault{Status: 401, Body: `{"error":"bad token"}`}, state: syncer.StateBlocked, code: failure.CodeUnauthorized},
		{name: "403 blocks", fault: idemserver.Fault{Status: 403}, state: syncer.StateBlocked, code: failure.CodeUnauthorized},
		{name: "503 retries", fault: idemserver.Fault{Status: 503}, state: syncer.StateOffline, code: failure.CodeUnreachable},
		{name: "429 with Retry-After retries", fault: idemserver.Fault{Status: 429, RetryAfter: "1"}, state: syncer.StateOffline, code: failure.CodeUnreachable},
		{name: "409 in progress retries", fault: idemserver.Fault{Status: 409, Body: `{"error":"in progress"}`}, state: syncer.StateOnline},
		{name: "dropped after applying retries and is deduplicated", fault: idemserver.Fault{Drop: true}, state: syncer.StateOffline, code: failure.CodeUnreachable},
		{name: "slow answers time out and retry", fault: idemserver.Fault{Delay: time.Hour}, state: syncer.StateOffline, code: failure.CodeUnreachable},
		{name: "422 fails that write only", fault: idemserver.Fault{Status: 422, Body: `{"message":"title is required"}`}, state: syncer.StateOnline, failed: true, reason: "422 Unprocessable Entity): title is required"},
		{name: "302 is not followed", fault: idemserver.Fault{Status: 302, Location: "https://login.example/"}, state: syncer.StateOnline, failed: true, reason: "redirected to https://login.example/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := idemserver.Start(t)
			// Only the slow case needs the send timeout; elsewhere it is long
			// enough that a loaded machine's stall cannot make the host send
			// a write again after its 2xx was delivered (which the check at
			// the end would rightly count).
			timeout := 30 * time.Second
			if tc.fault.Delay > 0 {
				timeout = time.Second
			}
			e := startHTTPHost(t, up.URL, localserver.Config{Sync: syncer.Options{SendTimeout: timeout}})
			up.SetFault(&tc.fault)
			first := testsupport.NewKey()
			resp, _ := e.write("POST", "/todos", `{"title":"first"}`, first, map[string]string{"Prefer": "respond-async"})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("write = %d", resp.StatusCode)
			}
			var st localserver.Status
			testsupport.WaitFor(t, "state "+tc.state, func() bool {
				st = e.status()
				okCode := tc.code == "" || st.Problem != nil && st.Problem.Code == tc.code
				return st.State == tc.state && okCode && (!tc.failed || st.Counts[outbox.Failed] == 1) &&
					(tc.failed || st.Counts[outbox.Queued] == 1 || tc.state == syncer.StateOnline)
			})
			if tc.failed {
				a := e.list("failed")[0]
				if !strings.Contains(a.LastError, tc.reason) {
					t.Errorf("last_error = %q, want %q", a.LastError, tc.reason)
				}
			}
			before := up.Requests()
			time.Sleep(time.Second)
			if n := up.Requests() - before; n > 8 {
				t.Errorf("%d requests in 1 s, want a handful: no tight loop", n)
			}
			// The fault ends; later writes and (unless it failed) the first one go through once.
			up.SetFault(nil)
			second := testsupport.NewKey()
			e.write("POST", "/todos", `{"title":"second"}`, second, map[string]string{"Prefer": "respond-async"})
			if tc.state == syncer.StateBlocked {
				if r, data := e.req("POST", "/api/sync", nil, nil); r.StatusCode != 200 {
					t.Fatalf("Sync now = %d %s", r.StatusCode, data)
				}
			}
			testsupport.WaitFor(t, "the second write", func() bool { return up.CountByKey()[second] == 1 })
			want := 1
			if tc.failed {
				want = 0
			}
			testsupport.WaitFor(t, "the first write settled", func() bool {
				c := e.status().Counts
				return c[outbox.Queued]+c[outbox.Syncing] == 0
			})
			counts := up.CountByKey()
			if counts[first] != want || counts[second] != 1 {
				t.Fatalf("applied by key: first %d (want %d), second %d (want 1)", counts[first], want, counts[second])
			}
			// The server replays its stored answer to a repeated key, so
			// the counts above hold whatever the host sends; what the host
			// answers for is not sending a key again once a 2xx for it was
			// delivered (a dropped answer or a fault is not delivered).
			if again := up.AfterDelivered(); len(again) > 0 {
				t.Fatalf("sent again after a delivered 2xx (requests by key): %v (first %s, second %s)", again, first, second)
			}
		})
	}
}

func TestUpstreamPathsNeedHTTPModeAndTheGuard(t *testing.T) {
	e := startHost(t, localserver.Config{})
	resp, data := e.write("POST", "/todos", `{}`, testsupport.NewKey(), nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(data), "--upstream-protocol http") {
		t.Fatalf("v1 host: %d %s, want 404 naming the flag", resp.StatusCode, data)
	}
	up := idemserver.Start(t)
	h := startHTTPHost(t, up.URL, localserver.Config{})
	resp, _ = h.req("POST", "/upstream/todos", `{}`, map[string]string{"Authorization": ""})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", resp.StatusCode)
	}
	resp, _ = h.req("POST", "/upstream/todos", `{}`, map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %d, want 403", resp.StatusCode)
	}
	if n := up.Requests(); n != 0 {
		t.Fatalf("the upstream got %d requests, want none", n)
	}
}

func TestHTTPModeWithSeveralWritesInFlight(t *testing.T) {
	up := idemserver.Start(t)
	e := startHTTPHost(t, up.URL, localserver.Config{WorkOffline: true, Sync: syncer.Options{Concurrency: 8}})
	keys := map[string]bool{}
	for i := range 50 {
		k := testsupport.NewKey()
		keys[k] = true
		if resp, _ := e.write("POST", "/todos", fmt.Sprintf(`{"n":%d}`, i), k, map[string]string{"Prefer": "respond-async"}); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("write %d = %d", i, resp.StatusCode)
		}
	}
	// One write the upstream refuses does not stop the others.
	bad := testsupport.NewKey()
	e.write("POST", "/todos", `{"title":"invalid"}`, bad, map[string]string{"Prefer": "respond-async"})
	if r, data := e.req("POST", "/api/sync", nil, nil); r.StatusCode != 200 {
		t.Fatalf("Sync now = %d %s", r.StatusCode, data)
	}
	c := e.status().Counts
	if c[outbox.Synced] != 50 || c[outbox.Failed] != 1 {
		t.Fatalf("counts = %v, want 50 synced and the invalid one failed", c)
	}
	got := up.CountByKey()
	for k := range keys {
		if got[k] != 1 {
			t.Fatalf("key %s applied %d times, want once", k, got[k])
		}
	}
	if got[bad] != 0 {
		t.Fatal("the refused write was applied")
	}
}

func TestHTTPModeWritesAPageWaitsForGoOutAtOnceWithSeveralInFlight(t *testing.T) {
	up := idemserver.Start(t)
	e := startHTTPHost(t, up.URL, localserver.Config{Sync: syncer.Options{Concurrency: 8}})
	var wg sync.WaitGroup
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = testsupport.NewKey()
		wg.Go(func() {
			resp, data := e.write("POST", "/todos", fmt.Sprintf(`{"n":%d}`, i), keys[i], nil)
			if resp.StatusCode != http.StatusCreated || resp.Header.Get("Synctray-State") != "synced" {
				t.Errorf("write %d = %d %s %s, want the upstream's 201", i, resp.StatusCode, resp.Header.Get("Synctray-State"), data)
			}
		})
	}
	wg.Wait()
	testsupport.WaitFor(t, "all recorded", func() bool { return e.status().Counts[outbox.Synced] == len(keys) })
	got := up.CountByKey()
	for _, k := range keys {
		if got[k] != 1 {
			t.Fatalf("key %s applied %d times, want once", k, got[k])
		}
	}
	for id := 1; id <= len(keys); id++ {
		_, data := e.req("GET", fmt.Sprintf("/api/actions/%d", id), nil, nil)
		if n := strings.Count(string(data), `"to":"syncing"`); n != 1 {
			t.Fatalf("action %d went to syncing %d times, want once: %s", id, n, data)
		}
	}
}

func TestReadsThroughUpstreamAreServedOfflineFromTheCache(t *testing.T) {
	up := idemserver.Start(t)
	var down atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		u, _ := url.Parse(up.URL)
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	defer front.Close()
	e := startHTTPHost(t, front.URL, localserver.Config{})
	resp, data := e.req("GET", "/upstream/todos?list=home", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Synctray-Cache") == "offline" {
		t.Fatalf("online read = %d %v %s", resp.StatusCode, resp.Header, data)
	}
	down.Store(true)
	resp, again := e.req("GET", "/upstream/todos?list=home", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Synctray-Cache") != "offline" || resp.Header.Get("Age") == "" || string(again) != string(data) {
		t.Fatalf("offline read = %d %v %s, want the stored answer with Age and Synctray-Cache: offline", resp.StatusCode, resp.Header, again)
	}
	resp, data = e.req("GET", "/upstream/never-seen", nil, nil)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(data), "offline_not_cached") {
		t.Fatalf("offline read of an unseen URL = %d %s, want 504 offline_not_cached", resp.StatusCode, data)
	}
}

// sent is how many requests up got with the Idempotency-Key key, applied
// or not.
func sent(up *idemserver.Server, key string) int {
	n := 0
	for _, h := range up.Headers() {
		if h.Get("Idempotency-Key") == key {
			n++
		}
	}
	return n
}

func TestHTTPModeGivesUpOnAWriteTheUpstreamKeepsSayingIsInProgress(t *testing.T) {
	up := idemserver.Start(t)
	busy := testsupport.NewKey()
	up.SetFault(&idemserver.Fault{Key: busy, Status: http.StatusConflict, Body: `{"error":"a request with this key is in progress"}`})
	// The fake clock moves the backoff on; a jitter of 1 makes it exactly
	// one second (MinBackoff = MaxBackoff).
	clk := clock.NewFake(time.Now().Truncate(time.Second))
	e := startHTTPHost(t, up.URL, localserver.Config{Sync: syncer.Options{Clock: clk, MinBackoff: time.Second, MaxBackoff: time.Second,
		Jitter: func() float64 { return 1 }}})
	_, data := e.write("POST", "/todos", `{"title":"busy"}`, busy, map[string]string{"Prefer": "respond-async"})
	var first struct {
		Action outbox.Action `json:"action"`
	}
	mustUnmarshal(t, data, &first)
	later := testsupport.NewKey()
	if resp, data := e.write("POST", "/todos", `{"title":"later"}`, later, map[string]string{"Prefer": "respond-async"}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("later write = %d %s", resp.StatusCode, data)
	}
	id := first.Action.ID
	for n := 1; n < syncer.MaxBusyAttempts; n++ {
		testsupport.WaitFor(t, fmt.Sprintf("attempt %d answered 409 and queued again", n), func() bool {
			a := e.get(id)
			return a.Attempts == n && a.State == outbox.Queued
		})
		if st := e.status(); st.State != syncer.StateOnline {
			t.Fatalf("state after attempt %d = %s (%+v), want online: a 409 means the upstream is there", n, st.State, st.Problem)
		}
		clk.Advance(time.Second) // past the backoff
	}
	testsupport.WaitFor(t, "the busy write failed", func() bool { return e.get(id).State == outbox.Failed })
	a := e.get(id)
	if a.Attempts != syncer.MaxBusyAttempts || !strings.Contains(a.LastError, "(409)") ||
		!strings.Contains(a.LastError, fmt.Sprintf("gave up after %d attempts", syncer.MaxBusyAttempts)) {
		t.Fatalf("failed after %d attempts with %q, want %d attempts and an error naming the 409 and the bound", a.Attempts, a.LastError, syncer.MaxBusyAttempts)
	}
	if n := sent(up, busy); n != syncer.MaxBusyAttempts {
		t.Fatalf("the upstream got the busy write %d times, want %d", n, syncer.MaxBusyAttempts)
	}
	// The write behind it was not held up for good: it goes out once.
	testsupport.WaitFor(t, "the later write synced", func() bool { return e.status().Counts[outbox.Synced] == 1 })
	if got := up.CountByKey(); got[later] != 1 || got[busy] != 0 {
		t.Fatalf("applied by key %v, want the later write once and the busy one never", got)
	}

	// Retry starts it over: a whole new round of attempts, not a give-up
	// at the next 409.
	if resp, data := e.req("POST", fmt.Sprintf("/api/actions/%d/retry", id), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry = %d %s", resp.StatusCode, data)
	}
	testsupport.WaitFor(t, "the retried write answered 409 and queued again", func() bool {
		a := e.get(id)
		return a.Attempts == 1 && a.State == outbox.Queued
	})
	up.SetFault(nil)
	clk.Advance(time.Second)
	testsupport.WaitFor(t, "the retried write synced", func() bool { return e.get(id).State == outbox.Synced })
	if got := up.CountByKey(); got[busy] != 1 {
		t.Fatalf("applied by key %v, want the retried write once", got)
	}
}

func TestHTTPModeKeepsTheFirst64KiBOfTheUpstreamsAnswer(t *testing.T) {
	// Numbered lines: any 64 KiB of it but the first differ from the first.
	var b strings.Builder
	for i := 0; b.Len() < httpup.AnswerBytes+10<<10; i++ {
		fmt.Fprintf(&b, "answer line %06d\n", i)
	}
	long := b.String()
	cases := []struct {
		name      string
		status    int
		body      string
		state     outbox.State
		truncated bool
	}{
		{"a 2xx longer than 64 KiB", http.StatusCreated, long, outbox.Synced, true},
		{"a 4xx longer than 64 KiB", http.StatusUnprocessableEntity, long, outbox.Failed, true},
		{"a 2xx of exactly 64 KiB", http.StatusOK, long[:httpup.AnswerBytes], outbox.Synced, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := idemserver.Start(t)
			e := startHTTPHost(t, up.URL, localserver.Config{})
			key := testsupport.NewKey()
			up.SetFault(&idemserver.Fault{Key: key, Status: tc.status, Body: tc.body})
			want := tc.body[:httpup.AnswerBytes]
			// The page waits (the default): it gets the upstream's status
			// and what the host kept of its body.
			resp, data := e.write("POST", "/blobs", `{"n":1}`, key, nil)
			if resp.StatusCode != tc.status || resp.Header.Get("Synctray-State") != string(tc.state) {
				t.Fatalf("answer = %d %s, want the upstream's %d and state %s", resp.StatusCode, resp.Header.Get("Synctray-State"), tc.status, tc.state)
			}
			if string(data) != want {
				t.Fatalf("the page got %d bytes of body, want the upstream's first %d", len(data), len(want))
			}
			id, err := strconv.ParseInt(resp.Header.Get("Synctray-Action"), 10, 64)
			if err != nil {
				t.Fatalf("Synctray-Action %q: %v", resp.Header.Get("Synctray-Action"), err)
			}
			// The page is answered before the outcome is recorded.
			testsupport.WaitFor(t, "the outcome recorded", func() bool { return e.get(id).State == tc.state })
			a := e.get(id)
			ans := httpup.ParseAnswer(a.Response)
			if ans == nil || ans.Status != tc.status {
				t.Fatalf("stored %s with answer %+v, want %s with the upstream's %d", a.State, ans, tc.state, tc.status)
			}
			if string(ans.Body) != want || ans.Truncated != tc.truncated {
				t.Fatalf("stored %d bytes of body (the first %d: %v), truncated %v; want exactly the first %d, truncated %v",
					len(ans.Body), len(want), strings.HasPrefix(tc.body, string(ans.Body)), ans.Truncated, len(want), tc.truncated)
			}
			if said := strings.Contains(a.Detail, "(the first 64 KiB are kept)"); said != tc.truncated {
				t.Fatalf("the detail says the answer was cut: %v, want %v; it ends:\n%s", said, tc.truncated, a.Detail[max(0, len(a.Detail)-200):])
			}
		})
	}
}

func TestHTTPModeMakesAKeyForAWriteWithoutOne(t *testing.T) {
	up := idemserver.Start(t)
	e := startHTTPHost(t, up.URL, localserver.Config{})
	var keys, actions []string
	for range 2 { // the same request twice, with no key
		resp, data := e.write("POST", "/todos", `{"title":"milk"}`, "", nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("answer = %d %s, want the upstream's 201", resp.StatusCode, data)
		}
		key := resp.Header.Get("Idempotency-Key")
		if u, err := uuid.Parse(key); err != nil || u.Version() != 7 {
			t.Fatalf("Idempotency-Key in the answer = %q, want the UUIDv7 the host made", key)
		}
		keys, actions = append(keys, key), append(actions, resp.Header.Get("Synctray-Action"))
	}
	got := up.Applied()
	if len(got) != 2 || got[0].Key != keys[0] || got[1].Key != keys[1] {
		t.Fatalf("applied %+v, want each write once with the key the page was told", got)
	}
	// The documented cost (docs/integrate.md, "No key?"): the host cannot
	// tell a resend from a new write, so it is a second action.
	if keys[0] == keys[1] || actions[0] == actions[1] {
		t.Fatalf("keys %v, actions %v: want two actions with two keys", keys, actions)
	}
	for i, id := range actions {
		n, _ := strconv.ParseInt(id, 10, 64)
		if a := e.get(n); a.Key != keys[i] || a.State != outbox.Synced && a.State != outbox.Syncing {
			t.Fatalf("action %s has key %s (%s), want %s", id, a.Key, a.State, keys[i])
		}
	}
}

func TestHTTPModeChecksSizesAtEnqueue(t *testing.T) {
	up := idemserver.Start(t)
	e := startHTTPHost(t, up.URL, localserver.Config{})
	binary := func(n int) []byte { // not UTF-8: stored as base64, a third larger
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0x80 + i%0x7f)
		}
		return b
	}
	text, octets := map[string]string{"Content-Type": "text/plain"}, map[string]string{"Content-Type": "application/octet-stream"}
	cases := []struct {
		name string
		body []byte
		hdr  map[string]string
		want int
		code string // of the refusal
		msg  string // in its message
	}{
		{"a body over 1 MiB is 413", []byte(strings.Repeat("x", localserver.MaxBodyBytes+1)), text, 413, "body_too_large", "larger than 1048576 bytes"},
		{"a text body whose stored write is over 256 KiB is 413", []byte(strings.Repeat("x", 300<<10)), text, 413, "payload_too_large",
			fmt.Sprintf("body of %d bytes", 300<<10)},
		{"a binary body of 200 KiB is 413: base64 takes it over 256 KiB", binary(200 << 10), octets, 413, "payload_too_large", "base64"},
		{"a text body of 200 KiB is stored", []byte(strings.Repeat("y", 200<<10)), text, 200, "", ""},
		{"a binary body of 180 KiB is stored", binary(180 << 10), octets, 200, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := testsupport.NewKey()
			hdr := map[string]string{"Idempotency-Key": key}
			for k, v := range c.hdr {
				hdr[k] = v
			}
			stored := func() (n int) { // actions in the outbox, in any state
				for _, c := range e.status().Counts {
					n += c
				}
				return n
			}
			before := stored()
			resp, data := e.req("PUT", "/upstream/blobs/1", c.body, hdr)
			if resp.StatusCode != c.want {
				t.Fatalf("status = %d, want %d (%.200s)", resp.StatusCode, c.want, data)
			}
			if c.code == "" {
				if got := up.Applied(); len(got) == 0 || got[len(got)-1].Key != key || got[len(got)-1].Body != string(c.body) {
					t.Fatal("the upstream did not get the body as sent")
				}
				return
			}
			var eb struct {
				Error localserver.ErrorBody `json:"error"`
			}
			mustUnmarshal(t, data, &eb)
			if eb.Error.Code != c.code || !strings.Contains(eb.Error.Message, c.msg) {
				t.Fatalf("error = %+v, want code %q with a message that says %q", eb.Error, c.code, c.msg)
			}
			if after := stored(); resp.Header.Get("Synctray-Action") != "" || after != before {
				t.Fatalf("a refused write was stored: Synctray-Action %q, %d actions before, %d after", resp.Header.Get("Synctray-Action"), before, after)
			}
			if sent(up, key) != 0 {
				t.Fatal("a refused write reached the upstream")
			}
		})
	}
}

func TestHTTPModeAPIShowsActionsAsRequests(t *testing.T) {
	up := idemserver.Start(t)
	e := startHTTPHost(t, up.URL, localserver.Config{})
	ok, _ := e.write("POST", "/todos", `{"title":"milk"}`, testsupport.NewKey(), nil)
	bad, _ := e.write("PUT", "/todos/7", `{"title":"invalid"}`, testsupport.NewKey(), nil) // idemserver refuses it: 422
	if ok.StatusCode != http.StatusCreated || bad.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("answers %d, %d; want the upstream's 201 and 422", ok.StatusCode, bad.StatusCode)
	}
	testsupport.WaitFor(t, "both recorded", func() bool {
		c := e.status().Counts
		return c[outbox.Synced] == 1 && c[outbox.Failed] == 1
	})
	okID, _ := strconv.ParseInt(ok.Header.Get("Synctray-Action"), 10, 64)
	badID, _ := strconv.ParseInt(bad.Header.Get("Synctray-Action"), 10, 64)
	want := map[int64]string{okID: "POST /todos → 201 Created", badID: "PUT /todos/7 → failed: 422 title is required"}
	listed := e.list("")
	if len(listed) != 2 {
		t.Fatalf("listed %d actions, want 2", len(listed))
	}
	for _, a := range listed {
		if a.Summary != want[a.ID] {
			t.Errorf("GET /api/actions: action %d summary %q, want %q", a.ID, a.Summary, want[a.ID])
		}
	}
	details := map[int64][]string{
		okID:  {"POST /todos\nContent-Type: application/json\n{\n  \"title\": \"milk\"\n}", "answer: 201 Created", "Location: /todos/1", `"received": {`},
		badID: {"PUT /todos/7\nContent-Type: application/json\n", `"title": "invalid"`, "answer: 422 Unprocessable Entity", `"message": "title is required"`},
	}
	for id, parts := range details {
		a := e.get(id)
		if a.Summary != want[id] {
			t.Errorf("GET /api/actions/%d: summary %q, want %q", id, a.Summary, want[id])
		}
		for _, p := range parts {
			if !strings.Contains(a.Detail, p) {
				t.Errorf("GET /api/actions/%d: detail lacks %q:\n%s", id, p, a.Detail)
			}
		}
	}
}

func TestHTTPModeRetryAndCancel(t *testing.T) {
	// change calls POST /api/actions/{id}/retry or /cancel, as the
	// inspector and `synctray outbox retry|cancel` do.
	change := func(t *testing.T, e *env, id int64, op string) outbox.Action {
		t.Helper()
		resp, data := e.req("POST", fmt.Sprintf("/api/actions/%d/%s", id, op), nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %d = %d %s", op, id, resp.StatusCode, data)
		}
		var a outbox.Action
		mustUnmarshal(t, data, &a)
		return a
	}
	// downHost is a host whose upstream is not there yet, on a fake clock:
	// after its first attempt a write stays queued until the clock moves.
	downHost := func(t *testing.T) (e *env, addr string, clk *clock.Fake) {
		t.Helper()
		addr = testsupport.FreeAddr(t)
		clk = clock.NewFake(time.Now().Truncate(time.Second))
		e = startHTTPHost(t, "http://"+addr, localserver.Config{Sync: syncer.Options{Clock: clk, MinBackoff: time.Second, MaxBackoff: time.Second,
			Jitter: func() float64 { return 1 }}})
		return e, addr, clk
	}
	queuedAfterOneAttempt := func(t *testing.T, e *env) localserver.ActionWithHistory {
		t.Helper()
		var a localserver.ActionWithHistory
		testsupport.WaitFor(t, "the write queued after a failed attempt", func() bool {
			got := e.list("queued")
			if len(got) != 1 || got[0].Attempts != 1 {
				return false
			}
			a = e.get(got[0].ID)
			return a.State == outbox.Queued
		})
		return a
	}

	t.Run("a write the upstream refused is sent again by Retry after the fix, and syncs once", func(t *testing.T) {
		up := idemserver.Start(t)
		e := startHTTPHost(t, up.URL, localserver.Config{})
		key := testsupport.NewKey()
		up.SetFault(&idemserver.Fault{Key: key, Status: http.StatusUnprocessableEntity, Body: `{"message":"title is required"}`})
		resp, data := e.write("POST", "/todos", `{"title":"milk"}`, key, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Synctray-State") != "failed" {
			t.Fatalf("answer = %d %s %s, want the upstream's 422, failed", resp.StatusCode, resp.Header.Get("Synctray-State"), data)
		}
		id, _ := strconv.ParseInt(resp.Header.Get("Synctray-Action"), 10, 64)
		testsupport.WaitFor(t, "the refusal recorded", func() bool { return e.get(id).State == outbox.Failed })
		up.SetFault(nil) // the upstream is fixed
		if a := change(t, e, id, "retry"); a.State != outbox.Queued {
			t.Fatalf("retry: action is %s, want queued", a.State)
		}
		testsupport.WaitFor(t, "the retried write synced", func() bool { return e.get(id).State == outbox.Synced })
		if r, data := e.req("POST", "/api/sync", nil, nil); r.StatusCode != http.StatusOK {
			t.Fatalf("Sync now = %d %s", r.StatusCode, data)
		}
		if n, applied := sent(up, key), up.CountByKey()[key]; n != 2 || applied != 1 {
			t.Fatalf("the upstream got the write %d times and applied it %d times, want 2 (refused, then retried) and once", n, applied)
		}
		if a := e.get(id); a.Summary != "POST /todos → 201 Created" {
			t.Fatalf("summary after the retry = %q, want the upstream's new answer", a.Summary)
		}
	})

	t.Run("a queued write that is cancelled is never sent", func(t *testing.T) {
		e, addr, clk := downHost(t)
		dropped, kept := testsupport.NewKey(), testsupport.NewKey()
		e.write("POST", "/todos", `{"title":"dropped"}`, dropped, map[string]string{"Prefer": "respond-async"})
		a := queuedAfterOneAttempt(t, e)
		if got := change(t, e, a.ID, "cancel"); got.State != outbox.Cancelled {
			t.Fatalf("cancel: action is %s, want cancelled", got.State)
		}
		up := idemserver.StartAt(t, addr)
		e.write("POST", "/todos", `{"title":"kept"}`, kept, map[string]string{"Prefer": "respond-async"})
		clk.Advance(time.Second) // past the backoff
		// The write queued after it goes out: the engine went past it.
		testsupport.WaitFor(t, "the later write applied", func() bool { return up.CountByKey()[kept] == 1 })
		if n := sent(up, dropped); n != 0 {
			t.Fatalf("the cancelled write reached the upstream %d times", n)
		}
		if got := e.get(a.ID); got.State != outbox.Cancelled {
			t.Fatalf("the cancelled write is %s", got.State)
		}
	})

	t.Run("a page waiting for a write that is cancelled gets 409 cancelled", func(t *testing.T) {
		e, _, _ := downHost(t)
		type answer struct {
			resp *http.Response
			data []byte
		}
		page := make(chan answer, 1)
		go func() {
			resp, data := e.write("POST", "/todos", `{"title":"x"}`, testsupport.NewKey(), map[string]string{"Prefer": "wait=60"})
			page <- answer{resp, data}
		}()
		a := queuedAfterOneAttempt(t, e)
		change(t, e, a.ID, "cancel")
		got := <-page
		var body struct {
			Error  localserver.ErrorBody `json:"error"`
			Action outbox.Action         `json:"action"`
		}
		mustUnmarshal(t, got.data, &body)
		if got.resp.StatusCode != http.StatusConflict || body.Error.Code != "cancelled" || body.Action.ID != a.ID ||
			got.resp.Header.Get("Synctray-State") != string(outbox.Cancelled) {
			t.Fatalf("the waiting page got %d %v %s, want 409 cancelled with the action", got.resp.StatusCode, got.resp.Header, got.data)
		}
	})
}
