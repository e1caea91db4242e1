package localserver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/failure"
	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
	"synctray/upstream"
)

// faultyFront sits between the host and a real reference upstream. While
// its fault is set it answers POST /v1/actions with that fault; otherwise
// (and for everything else) it forwards to the upstream.
type faultyFront struct {
	proxy *httputil.ReverseProxy
	fault atomic.Pointer[func(w http.ResponseWriter, r *http.Request, body []byte) bool]
	posts atomic.Int64 // POST /v1/actions received while the fault was set
}

func newFaultyFront(t *testing.T, upURL string) (*faultyFront, string) {
	u, _ := url.Parse(upURL)
	f := &faultyFront{proxy: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts.URL
}

func (f *faultyFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if fp := f.fault.Load(); fp != nil && r.Method == http.MethodPost && r.URL.Path == "/v1/actions" {
		body, _ := io.ReadAll(r.Body)
		f.posts.Add(1)
		if (*fp)(w, r, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	f.proxy.ServeHTTP(w, r)
}

func (f *faultyFront) set(fn func(w http.ResponseWriter, r *http.Request, body []byte) bool) {
	if fn == nil {
		f.fault.Store(nil)
		return
	}
	f.fault.Store(&fn)
}

// answer is a fault that always answers status, type and body.
func answer(status int, ctype, body string) func(http.ResponseWriter, *http.Request, []byte) bool {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		io.WriteString(w, body)
		return true
	}
}

const htmlPage = `<!DOCTYPE html><html><head><title>Error response</title></head><body><h1>Error response</h1><p>Error code: %d</p><p>Message: Unsupported method ('POST').</p></body></html>`

// fixedKeys rewrites every result of the real answer with fn.
func resultsWith(fn func(keys []string) string) func(http.ResponseWriter, *http.Request, []byte) bool {
	return func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		var req struct {
			Actions []struct {
				Key string `json:"key"`
			} `json:"actions"`
		}
		json.Unmarshal(body, &req)
		var keys []string
		for _, a := range req.Actions {
			keys = append(keys, a.Key)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, fn(keys))
		return true
	}
}

func TestFaultMatrix(t *testing.T) {
	const n = 20
	poisonText := "poison-for-the-matrix"
	cases := []struct {
		name    string
		fault   func(http.ResponseWriter, *http.Request, []byte) bool
		state   string
		code    string // problem code; "" for none
		message string // in the problem's message
		poison  bool   // one action is poison: it alone fails
	}{
		{name: "401", fault: answer(401, "application/json", `{"error":{"code":"unauthorized","message":"missing or wrong bearer token"}}`),
			state: syncer.StateBlocked, code: failure.CodeUnauthorized, message: "Upstream refused the token"},
		{name: "403", fault: answer(403, "text/plain", "forbidden"),
			state: syncer.StateBlocked, code: failure.CodeUnauthorized, message: "Upstream refused the token"},
		{name: "404 HTML", fault: answer(404, "text/html; charset=utf-8", fmt.Sprintf(htmlPage, 404)),
			state: syncer.StateBlocked, code: failure.CodeProtocol, message: "does not speak synctray protocol v1 (POST /v1/actions answered 404 text/html)"},
		{name: "501", fault: answer(501, "text/html", fmt.Sprintf(htmlPage, 501)),
			state: syncer.StateBlocked, code: failure.CodeProtocol, message: "does not speak synctray protocol v1 (POST /v1/actions answered 501 text/html)"},
		{name: "2xx garbage", fault: answer(200, "text/html", "<html>hello</html>"),
			state: syncer.StateBlocked, code: failure.CodeProtocol, message: "answer is not the JSON expected"},
		{name: "2xx without results", fault: answer(201, "application/json", `{"ok":true}`),
			state: syncer.StateBlocked, code: failure.CodeProtocol, message: "no results array"},
		{name: "unknown result status", fault: resultsWith(func(keys []string) string {
			var rs []string
			for _, k := range keys {
				rs = append(rs, `{"key":"`+k+`","status":"ok"}`)
			}
			return `{"results":[` + strings.Join(rs, ",") + `]}`
		}), state: syncer.StateBlocked, code: failure.CodeProtocol, message: `result status "ok" is unknown`},
		{name: "wrong keys", fault: resultsWith(func(keys []string) string {
			var rs []string
			for range keys {
				rs = append(rs, `{"key":"00000000-0000-7000-8000-000000000000","status":"applied"}`)
			}
			return `{"results":[` + strings.Join(rs, ",") + `]}`
		}), state: syncer.StateBlocked, code: failure.CodeProtocol, message: "result 0 is for another key"},
		{name: "400 batch with one poison action", poison: true, fault: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
			if !bytes.Contains(body, []byte(poisonText)) {
				return false // forwarded: the real upstream applies it
			}
			return answer(400, "application/json", `{"error":{"code":"bad_request","message":"field text is poison"}}`)(w, r, body)
		}, state: syncer.StateOnline},
		{name: "413 batch with one poison action", poison: true, fault: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
			if !bytes.Contains(body, []byte(poisonText)) {
				return false
			}
			return answer(413, "application/json", `{"error":{"code":"too_large","message":"field text is poison"}}`)(w, r, body)
		}, state: syncer.StateOnline},
		{name: "429 with a huge Retry-After", fault: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
			w.Header().Set("Retry-After", "999999999")
			return answer(429, "application/json", `{"error":{"code":"throttled","message":"slow down"}}`)(w, r, body)
		}, state: syncer.StateOffline, code: failure.CodeUnreachable, message: "Upstream asked to slow down"},
		{name: "hang", fault: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
			<-r.Context().Done()
			return true
		}, state: syncer.StateOffline, code: failure.CodeUnreachable, message: "Upstream did not answer in time"},
		{name: "400 MiB answer", fault: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"results":[{"key":"x","status":"applied","error":"`)
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for range 400 {
				if _, err := w.Write(chunk); err != nil {
					return true // the host stopped reading
				}
			}
			return true
		}, state: syncer.StateBlocked, code: failure.CodeProtocol, message: "answer larger than 16 MiB"},
	}

	var mu sync.Mutex
	var rows []string
	t.Cleanup(func() {
		if len(rows) == 0 {
			return
		}
		slices.Sort(rows)
		table := "| upstream behaviour | state | problem | POSTs in the first 3 s | after the fix |\n|---|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
		os.MkdirAll(filepath.Join("..", "artifacts"), 0o755)
		os.WriteFile(filepath.Join("..", "artifacts", "fault-matrix.txt"), []byte("Fault matrix (localserver TestFaultMatrix)\n"+table), 0o644)
	})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, upStore, upURL := testupstream.Start(t, upstream.Options{})
			front, frontURL := newFaultyFront(t, upURL)
			front.set(tc.fault)
			e := startHost(t, localserver.Config{UpstreamURL: frontURL, Sync: syncer.Options{
				BatchSize: 8, MaxBackoff: 2 * time.Second, ProbeEvery: 200 * time.Millisecond, SendTimeout: 500 * time.Millisecond,
			}})
			e.upStore = upStore

			var keys []string
			poisonKey := ""
			for i := range n {
				k := testsupport.NewKey()
				payload := fmt.Sprintf(`{"text":"m%d"}`, i)
				if tc.poison && i == n/2 {
					payload, poisonKey = `{"text":"`+poisonText+`"}`, k
				}
				if st, _ := e.post(k, "message", payload); st != http.StatusAccepted {
					t.Fatalf("enqueue %d = %d", i, st)
				}
				if k != poisonKey {
					keys = append(keys, k)
				}
			}

			// The state the host reports, within a few seconds.
			var st localserver.Status
			testsupport.WaitFor(t, "state "+tc.state, func() bool {
				st = e.status()
				okCode := tc.code == "" && st.Problem == nil || st.Problem != nil && st.Problem.Code == tc.code
				return st.State == tc.state && okCode && (!tc.poison || st.Counts[outbox.Failed] == 1)
			})
			if tc.message != "" && !strings.Contains(st.Problem.Message, tc.message) {
				t.Errorf("problem message = %q, want it to contain %q", st.Problem.Message, tc.message)
			}
			if st.Problem != nil && (len([]rune(st.Problem.Message)) > failure.MaxLine || strings.ContainsAny(st.Problem.Message, "<>\n")) {
				t.Errorf("problem message is not one short line without HTML: %q", st.Problem.Message)
			}
			if tc.state == syncer.StateOffline && st.NextAttempt != nil && time.Until(*st.NextAttempt) > 2*time.Second+time.Second {
				t.Errorf("next attempt in %v, want at most the 2s backoff cap", time.Until(*st.NextAttempt))
			}
			// No tight loop: a handful of requests in 3 s.
			time.Sleep(3 * time.Second)
			posts := front.posts.Load()
			limit := int64(8)
			if tc.poison {
				limit = 24 // small batches while enqueuing, and splitting takes about 2·log2(batch) requests
			}
			if posts > limit {
				t.Errorf("%d POSTs to the upstream in about 3 s, want at most %d: a tight loop", posts, limit)
			}
			if !tc.poison {
				if c := e.status().Counts; c[outbox.Queued]+c[outbox.Syncing] != n || c[outbox.Failed] != 0 {
					t.Errorf("counts = %v, want all %d still queued and none failed", c, n)
				}
			}

			// Fix the upstream: blocked waits for Sync now, offline recovers by itself.
			front.set(nil)
			if tc.state == syncer.StateBlocked {
				if resp, data := e.req("POST", "/api/sync", nil, nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("Sync now after the fix = %d %s", resp.StatusCode, data)
				}
			}
			testsupport.WaitFor(t, "everything synced after the fix", func() bool {
				c := e.status().Counts
				return c[outbox.Queued]+c[outbox.Syncing] == 0
			})
			got := e.upstreamEvents()
			seen := map[string]int{}
			for _, k := range got {
				seen[k]++
			}
			for _, k := range keys {
				if seen[k] != 1 {
					t.Errorf("key %s applied %d times, want exactly once", k, seen[k])
				}
			}
			if len(got) != len(keys) {
				t.Errorf("upstream applied %d actions, want %d", len(got), len(keys))
			}
			after := "all applied once"
			if tc.poison {
				st := e.status()
				if st.Counts[outbox.Failed] != 1 || st.State != syncer.StateOnline {
					t.Errorf("after the poison: %v %s, want exactly one failed, online", st.Counts, st.State)
				}
				page := e.list("failed")
				if len(page) != 1 || page[0].Key != poisonKey || !strings.Contains(page[0].LastError, "field text is poison") {
					t.Errorf("failed actions = %+v, want only the poison one with the upstream's reason", page)
				}
				after = "the poison one failed, named; the rest applied once"
			}
			problem := "—"
			if st.Problem != nil {
				problem = st.Problem.Code + ": " + strings.ReplaceAll(st.Problem.Message, "|", "/")
			}
			mu.Lock()
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %d | %s |", tc.name, st.State, problem, posts, after))
			mu.Unlock()
		})
	}
}

// list returns the actions in one state, newest first.
func (e *env) list(state string) []outbox.Action {
	e.t.Helper()
	resp, data := e.req("GET", "/api/actions?state="+state+"&limit=1000", nil, nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("list: %d %s", resp.StatusCode, data)
	}
	var page outbox.Page
	mustUnmarshal(e.t, data, &page)
	return page.Actions
}
