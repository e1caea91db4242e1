package readcache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver/readcache"
)

func TestReadsArePassedThroughUnderTheUpstreamsPrefixWithTheQueryKept(t *testing.T) {
	r := newRig(t, "/api/v1", jsonAnswer(`{"todos":[1,2]}`), readcache.Options{}, readcache.HandlerOptions{})
	resp, body := r.get("/upstream/todos/a%2Fb?x=1&y=%20z+w&x=2&flag")
	if resp.StatusCode != http.StatusOK || body != `{"todos":[1,2]}` {
		t.Fatalf("answer = %d %q, want 200 with the upstream's body", resp.StatusCode, body)
	}
	if got, want := r.last().RequestURI, "/api/v1/todos/a%2Fb?x=1&y=%20z+w&x=2&flag"; got != want {
		t.Errorf("upstream got %q, want %q", got, want)
	}
	wantHeader(t, resp, "Content-Type", "application/json")
	wantHeader(t, resp, "ETag", `"v1"`)
	wantHeader(t, resp, "Last-Modified", "Mon, 30 Nov 2026 09:00:00 GMT")
	wantHeader(t, resp, "Cache-Control", "private, max-age=0, must-revalidate")
	wantHeader(t, resp, "Content-Length", "15")
	wantHeader(t, resp, readcache.HeaderCache, readcache.CacheStored)
	wantHeader(t, resp, "Set-Cookie", "")
	wantHeader(t, resp, "X-Internal", "")

	t.Run("the prefix alone is the upstream's base", func(t *testing.T) {
		r.get("/upstream")
		if got := r.last().RequestURI; got != "/api/v1" {
			t.Errorf("upstream got %q, want /api/v1", got)
		}
	})
	t.Run("a path with dot segments is refused", func(t *testing.T) {
		for _, p := range []string{"/upstream/../admin", "/upstream/a/%2e%2e/admin", "/upstream/./x"} {
			req, _ := http.NewRequest(http.MethodGet, r.host.URL, nil)
			req.URL.Opaque = p // sent as written, not cleaned by the client
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET %s = %d, want 400", p, resp.StatusCode)
			}
		}
	})
	t.Run("other upstream statuses pass through, not stored", func(t *testing.T) {
		up := func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, `{"error":"teapot"}`)
		}
		r := newRig(t, "", up, readcache.Options{}, readcache.HandlerOptions{})
		resp, body := r.get("/upstream/pot")
		if resp.StatusCode != http.StatusTeapot || body != `{"error":"teapot"}` {
			t.Fatalf("answer = %d %q, want the upstream's 418", resp.StatusCode, body)
		}
		wantHeader(t, resp, readcache.HeaderCache, readcache.CacheMiss)
	})
}

func TestHostHeldCredentialsAreSentButNeverReachThePageAndPageCredentialsStayHome(t *testing.T) {
	const secret = "Bearer s3cret-token"
	echo := func(w http.ResponseWriter, req *http.Request) {
		for name, v := range req.Header {
			w.Header()["Echo-"+name] = v
		}
		w.Header().Set("Vary", "Authorization, Accept")
		w.Header().Set("WWW-Authenticate", req.Header.Get("Authorization"))
		w.Header().Set("Set-Cookie", "sid="+req.Header.Get("Authorization"))
		io.WriteString(w, "ok")
	}
	r := newRig(t, "", echo, readcache.Options{}, readcache.HandlerOptions{
		Headers: http.Header{"Authorization": {secret}, "x-api-key": {"k-123"}},
		Forward: []string{"X-Request-Id", "Cookie", "authorization"},
	})
	resp, _ := r.get("/upstream/me", "Cookie", "session=page-cookie", "Authorization", "Bearer page-token",
		"X-Request-Id", "r1", "Accept", "application/json", "X-Other", "not forwarded")

	got := r.last().Header
	if got.Get("Authorization") != secret || got.Get("X-Api-Key") != "k-123" {
		t.Errorf("upstream got Authorization %q, X-Api-Key %q; want the host's", got.Get("Authorization"), got.Get("X-Api-Key"))
	}
	for _, name := range []string{"Cookie", "X-Other"} {
		if v := got.Get(name); v != "" {
			t.Errorf("upstream got %s %q, want none", name, v)
		}
	}
	if strings.Contains(fmt.Sprint(got), "page-token") {
		t.Errorf("upstream got the page's Authorization: %v", got)
	}
	if got.Get("X-Request-Id") != "r1" || got.Get("Accept") != "application/json" {
		t.Errorf("upstream got X-Request-Id %q, Accept %q; want them forwarded", got.Get("X-Request-Id"), got.Get("Accept"))
	}
	check := func(resp *http.Response) {
		t.Helper()
		for name, v := range resp.Header {
			if s := strings.Join(v, " "); strings.Contains(s, "s3cret") || strings.Contains(s, "k-123") {
				t.Errorf("the page got the host's credentials in %s: %q", name, s)
			}
		}
		wantHeader(t, resp, "Set-Cookie", "")
	}
	check(resp)

	r.down.Store(true)
	resp, body := r.get("/upstream/me", "Accept", "application/json")
	if resp.Header.Get(readcache.HeaderCache) != readcache.CacheOffline || body != "ok" {
		t.Fatalf("offline answer = %s %q, want the stored one", resp.Header.Get(readcache.HeaderCache), body)
	}
	check(resp)
	r.cache.Close()
	for _, p := range []string{r.path, r.path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("s3cret")) {
			t.Errorf("%s holds the host's credential in the clear", p)
		}
	}
}

func TestAStoredAnswerIsServedWithItsAgeWhenTheUpstreamIsUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(r *rig)
	}{
		{"connection refused", func(r *rig) { r.up.Close() }},
		{"502", func(r *rig) { r.downStatus.Store(502); r.down.Store(true) }},
		{"503", func(r *rig) { r.downStatus.Store(503); r.down.Store(true) }},
		{"504", func(r *rig) { r.downStatus.Store(504); r.down.Store(true) }},
	} {
		t.Run("when the upstream gives "+tc.name, func(t *testing.T) {
			r := newRig(t, "/api", jsonAnswer(`{"n":1}`), readcache.Options{}, readcache.HandlerOptions{})
			if resp, _ := r.get("/upstream/n?page=2"); resp.Header.Get(readcache.HeaderCache) != readcache.CacheStored {
				t.Fatalf("online answer %s = %q, want stored", readcache.HeaderCache, resp.Header.Get(readcache.HeaderCache))
			}
			r.clock.Add(90 * time.Second)
			tc.down(r)
			resp, body := r.get("/upstream/n?page=2")
			if resp.StatusCode != http.StatusOK || body != `{"n":1}` {
				t.Fatalf("offline answer = %d %q, want 200 with the stored body", resp.StatusCode, body)
			}
			wantHeader(t, resp, readcache.HeaderCache, readcache.CacheOffline)
			wantHeader(t, resp, "Age", "90")
			wantHeader(t, resp, "Content-Type", "application/json")
			wantHeader(t, resp, "ETag", `"v1"`)
			wantHeader(t, resp, "Content-Length", "7")
			wantHeader(t, resp, "Set-Cookie", "")

			resp, _ = r.get("/upstream/n?page=3")
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("another query offline = %d, want 504: the query is part of the key", resp.StatusCode)
			}
		})
	}
}

func TestAReadWithNothingStoredGets504AndAOneLineJSONError(t *testing.T) {
	r := newRig(t, "", jsonAnswer(`{}`), readcache.Options{}, readcache.HandlerOptions{})
	r.down.Store(true)
	resp, body := r.get("/upstream/never")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504", resp.StatusCode)
	}
	wantHeader(t, resp, "Content-Type", "application/json; charset=utf-8")
	wantHeader(t, resp, "Retry-After", "7")
	if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
		t.Errorf("body %q is not one line", body)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if e.Error.Code != readcache.CodeOfflineNotCached || !strings.Contains(e.Error.Message, "503") || !strings.Contains(e.Error.Message, "/upstream/never") {
		t.Errorf("error = %+v, want offline_not_cached naming the 503 and the path", e.Error)
	}

	r.up.Close()
	resp, body = r.get("/upstream/never")
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "not reachable") || strings.Contains(body, "dial tcp") {
		t.Errorf("with the upstream gone: %d %q, want 504 saying it is not reachable, without transport noise", resp.StatusCode, body)
	}
}

func TestVaryKeysAnswersByTheNamedRequestHeaders(t *testing.T) {
	up := func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Vary", "accept-language")
		w.Header().Add("Vary", "Accept")
		fmt.Fprintf(w, "%s|%s", req.Header.Get("Accept-Language"), req.Header.Get("Accept"))
	}
	r := newRig(t, "", up, readcache.Options{}, readcache.HandlerOptions{})
	r.get("/upstream/hello", "Accept-Language", "en", "Accept", "text/plain")
	r.get("/upstream/hello", "Accept-Language", "fr", "Accept", "text/plain")
	r.down.Store(true)
	for _, tc := range []struct{ lang, accept, want string }{
		{"en", "text/plain", "en|text/plain"},
		{"fr", "text/plain", "fr|text/plain"},
		{"de", "text/plain", ""},
		{"en", "text/html", ""},
	} {
		resp, body := r.get("/upstream/hello", "Accept-Language", tc.lang, "Accept", tc.accept)
		switch {
		case tc.want == "" && resp.StatusCode != http.StatusGatewayTimeout:
			t.Errorf("%s %s offline = %d %q, want 504: nothing stored for these values", tc.lang, tc.accept, resp.StatusCode, body)
		case tc.want != "" && body != tc.want:
			t.Errorf("%s %s offline = %d %q, want %q", tc.lang, tc.accept, resp.StatusCode, body, tc.want)
		}
	}
}

func TestAnswersThatMustNotBeStoredAreNotStored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"Cache-Control: no-store", map[string]string{"Cache-Control": "max-age=60, No-Store"}, 200},
		{"Vary: *", map[string]string{"Vary": "Accept, *"}, 200},
		{"201 Created", nil, 201},
		{"203 Non-Authoritative", nil, 203},
		{"404 Not Found", nil, 404},
	} {
		t.Run(tc.name+" is passed through but not stored", func(t *testing.T) {
			up := func(w http.ResponseWriter, req *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, "body")
			}
			r := newRig(t, "", up, readcache.Options{}, readcache.HandlerOptions{})
			resp, body := r.get("/upstream/x")
			if resp.StatusCode != tc.status || body != "body" {
				t.Fatalf("online = %d %q, want %d body", resp.StatusCode, body, tc.status)
			}
			wantHeader(t, resp, readcache.HeaderCache, readcache.CacheMiss)
			r.down.Store(true)
			if resp, _ := r.get("/upstream/x"); resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("offline = %d, want 504", resp.StatusCode)
			}
		})
	}
}

func TestAGoneResourceIsNoLongerServedOffline(t *testing.T) {
	gone := false
	up := func(w http.ResponseWriter, req *http.Request) {
		if gone {
			http.NotFound(w, req)
			return
		}
		io.WriteString(w, "todo 7")
	}
	r := newRig(t, "", up, readcache.Options{}, readcache.HandlerOptions{})
	r.get("/upstream/todos/7")
	gone = true
	if resp, _ := r.get("/upstream/todos/7"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("online after delete = %d, want 404", resp.StatusCode)
	}
	r.down.Store(true)
	if resp, body := r.get("/upstream/todos/7"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("offline after a 404 = %d %q, want 504", resp.StatusCode, body)
	}
}

func TestTooLargeAnswersArePassedWholeButNotStored(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	for _, tc := range []struct {
		name    string
		chunked bool
	}{{"with a Content-Length", false}, {"streamed without a length", true}} {
		t.Run(tc.name, func(t *testing.T) {
			up := func(w http.ResponseWriter, req *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(big)))
				}
				for i := 0; i < len(big); i += 8192 {
					io.WriteString(w, big[i:i+8192])
					if tc.chunked {
						w.(http.Flusher).Flush()
					}
				}
			}
			r := newRig(t, "", up, readcache.Options{MaxEntry: 16 << 10}, readcache.HandlerOptions{})
			resp, body := r.get("/upstream/big")
			if body != big {
				t.Fatalf("page got %d bytes, want all %d", len(body), len(big))
			}
			wantHeader(t, resp, readcache.HeaderCache, readcache.CacheMiss)
			if s, err := r.cache.Stats(t.Context()); err != nil || s.Entries != 0 {
				t.Errorf("Stats = %+v, %v; want nothing stored", s, err)
			}
			r.down.Store(true)
			if resp, _ := r.get("/upstream/big"); resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("offline = %d, want 504", resp.StatusCode)
			}
		})
	}
	t.Run("an answer of exactly MaxEntry is stored", func(t *testing.T) {
		r := newRig(t, "", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, big[:16<<10]) },
			readcache.Options{MaxEntry: 16 << 10}, readcache.HandlerOptions{})
		resp, _ := r.get("/upstream/edge")
		wantHeader(t, resp, readcache.HeaderCache, readcache.CacheStored)
	})
}

func TestLRUEvictionKeepsTheTotalUnderMaxBytes(t *testing.T) {
	body := strings.Repeat("x", 4000)
	const maxBytes = 20_000 // four entries of ~4.2 KB fit, five do not
	r := newRig(t, "", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) },
		readcache.Options{MaxBytes: maxBytes}, readcache.HandlerOptions{})
	for _, p := range []string{"a", "b", "c", "d"} {
		r.get("/upstream/" + p)
	}
	r.down.Store(true)
	r.get("/upstream/a") // used offline: now b is the least recently used
	r.down.Store(false)
	r.get("/upstream/e")
	r.get("/upstream/f")

	s, err := r.cache.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Bytes > maxBytes || s.Entries != 4 {
		t.Errorf("Stats = %+v, want 4 entries within %d bytes", s, maxBytes)
	}
	r.down.Store(true)
	for p, want := range map[string]int{"a": 200, "b": 504, "c": 504, "d": 200, "e": 200, "f": 200} {
		if resp, _ := r.get("/upstream/" + p); resp.StatusCode != want {
			t.Errorf("offline /%s = %d, want %d", p, resp.StatusCode, want)
		}
	}
}

func TestHEADIsPassedThroughAndServedOfflineWithoutABody(t *testing.T) {
	r := newRig(t, "", jsonAnswer(`{"h":true}`), readcache.Options{}, readcache.HandlerOptions{})
	resp, body := r.do(http.MethodHead, "/upstream/h")
	if resp.StatusCode != http.StatusOK || body != "" || r.last().Method != http.MethodHead {
		t.Fatalf("HEAD = %d %q, upstream got %s; want 200, no body, a HEAD", resp.StatusCode, body, r.last().Method)
	}
	wantHeader(t, resp, "Content-Length", "10")
	wantHeader(t, resp, readcache.HeaderCache, readcache.CacheMiss)

	r.get("/upstream/h")
	r.down.Store(true)
	resp, body = r.do(http.MethodHead, "/upstream/h")
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("HEAD offline = %d %q, want 200 and no body", resp.StatusCode, body)
	}
	wantHeader(t, resp, readcache.HeaderCache, readcache.CacheOffline)
	wantHeader(t, resp, "Content-Length", "10")
	wantHeader(t, resp, "ETag", `"v1"`)
}

func TestStoredAnswersSurviveAReopen(t *testing.T) {
	r := newRig(t, "/api", jsonAnswer(`{"kept":true}`), readcache.Options{}, readcache.HandlerOptions{})
	r.get("/upstream/kept")
	if err := r.cache.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	testsupport.CheckPrivate(t, r.path)
	r.up.Close()

	c := mustOpen(t, r.path, readcache.Options{Now: r.clock.Now})
	u := *r.last().URL
	u.Scheme, u.Host, u.Path, u.RawQuery = "http", r.last().Host, "/api", ""
	host := newHost(t, readcache.HandlerOptions{Upstream: &u, Cache: c})
	resp, err := http.Get(host + "/upstream/kept")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != `{"kept":true}` || resp.Header.Get(readcache.HeaderCache) != readcache.CacheOffline {
		t.Errorf("after reopen = %d %q %s, want the stored answer, offline", resp.StatusCode, b, resp.Header.Get(readcache.HeaderCache))
	}
}

func TestADamagedCacheFileIsReplacedByAnEmptyOne(t *testing.T) {
	path := t.TempDir() + "/cache.db"
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustOpen(t, path, readcache.Options{})
	if s, err := c.Stats(t.Context()); err != nil || s.Entries != 0 {
		t.Errorf("Stats = %+v, %v; want an empty cache", s, err)
	}
}

func TestWritesAreRefusedWith405(t *testing.T) {
	r := newRig(t, "", jsonAnswer(`{}`), readcache.Options{}, readcache.HandlerOptions{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		resp, body := r.do(m, "/upstream/todos")
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(body, readcache.CodeMethodNotAllowed) {
			t.Errorf("%s = %d %q, want 405 method_not_allowed", m, resp.StatusCode, body)
		}
		wantHeader(t, resp, "Allow", "GET, HEAD")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) != 0 {
		t.Errorf("the upstream got %d requests, want none", len(r.seen))
	}
}

func TestConditionalReadsAndRedirectsPassThrough(t *testing.T) {
	up := func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/api/doc":
			if req.Header.Get("If-None-Match") == `"v1"` {
				w.Header().Set("ETag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", `"v1"`)
			io.WriteString(w, "doc")
		case "/api/old":
			w.Header().Set("Location", "http://"+req.Host+"/api/new?x=1")
			w.WriteHeader(http.StatusFound)
		case "/api/elsewhere":
			w.Header().Set("Location", "/login")
			w.WriteHeader(http.StatusSeeOther)
		}
	}
	r := newRig(t, "/api", up, readcache.Options{}, readcache.HandlerOptions{})
	resp, body := r.get("/upstream/doc", "If-None-Match", `"v1"`)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("conditional GET = %d %q, want the upstream's 304", resp.StatusCode, body)
	}
	wantHeader(t, resp, "ETag", `"v1"`)

	resp, _ = r.get("/upstream/old")
	if resp.StatusCode != http.StatusFound {
		t.Errorf("redirect = %d, want the upstream's 302, not followed", resp.StatusCode)
	}
	wantHeader(t, resp, "Location", "/upstream/new?x=1")
	resp, _ = r.get("/upstream/elsewhere")
	wantHeader(t, resp, "Location", r.up.URL+"/login")
}

func newHost(t testing.TB, o readcache.HandlerOptions) string {
	t.Helper()
	s := newServer(readcache.Handler(o))
	t.Cleanup(s.Close)
	return s.URL
}

func TestAfterTheUpstreamCouldNotBeReachedReadsForDownForDoNotTryIt(t *testing.T) {
	var dials atomic.Int32
	var refuse atomic.Bool
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		if refuse.Load() {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	r := newRig(t, "", jsonAnswer(`{"v":1}`), readcache.Options{}, readcache.HandlerOptions{
		Client: &http.Client{Transport: tr}, DownFor: 5 * time.Second,
	})
	r.get("/upstream/v")
	tr.CloseIdleConnections()
	refuse.Store(true)
	before := dials.Load()
	for range 5 {
		if resp, _ := r.get("/upstream/v"); resp.Header.Get(readcache.HeaderCache) != readcache.CacheOffline {
			t.Fatalf("read while down: %s = %q, want offline", readcache.HeaderCache, resp.Header.Get(readcache.HeaderCache))
		}
	}
	if got := dials.Load() - before; got != 1 {
		t.Errorf("dials while down = %d, want 1: the first failure holds for DownFor", got)
	}
	refuse.Store(false)
	r.clock.Add(5 * time.Second)
	resp, _ := r.get("/upstream/v")
	wantHeader(t, resp, readcache.HeaderCache, readcache.CacheStored)
	if got := dials.Load() - before; got != 2 {
		t.Errorf("dials after DownFor = %d, want 2: the upstream is tried again", got)
	}
}

func TestAnAnswerTheUpstreamBreaksOffIsNeitherStoredNorPassedAsWhole(t *testing.T) {
	var full atomic.Bool
	broken := func(w http.ResponseWriter, req *http.Request) {
		if full.Load() {
			io.WriteString(w, "the old whole answer")
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
		buf.Flush()
	}
	t.Run("a small answer cut short is treated as the upstream being unreachable", func(t *testing.T) {
		r := newRig(t, "", broken, readcache.Options{}, readcache.HandlerOptions{})
		if resp, body := r.get("/upstream/cut"); resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("with nothing stored = %d %q, want 504", resp.StatusCode, body)
		}
		full.Store(true)
		r.get("/upstream/cut")
		full.Store(false)
		resp, body := r.get("/upstream/cut")
		if body != "the old whole answer" || resp.Header.Get(readcache.HeaderCache) != readcache.CacheOffline {
			t.Errorf("with an answer stored = %q (%s), want the stored one, offline", body, resp.Header.Get(readcache.HeaderCache))
		}
	})
	t.Run("a streamed answer cut short fails at the page too", func(t *testing.T) {
		full.Store(false)
		r := newRig(t, "", broken, readcache.Options{MaxEntry: 16}, readcache.HandlerOptions{})
		resp, err := noRedirects.Get(r.host.URL + "/upstream/cut")
		if err != nil {
			return // cut before the headers went out: the page sees it
		}
		defer resp.Body.Close()
		if b, err := io.ReadAll(resp.Body); err == nil {
			t.Errorf("page read %d %q without an error, want the cut to show", resp.StatusCode, b)
		}
	})
}
