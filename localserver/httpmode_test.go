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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/failure"
	"synctray/internal/testsupport"
	"synctray/internal/testsupport/idemserver"
	"synctray/localserver"
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
			e := startHTTPHost(t, up.URL, localserver.Config{Sync: syncer.Options{SendTimeout: 300 * time.Millisecond}})
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
