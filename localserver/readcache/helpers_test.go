package readcache_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/localserver/readcache"
)

// noRedirects is the page's client in tests: it shows redirects.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// clock is a fake time source that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rig is an upstream (httptest), a cache in a temp dir and the host side:
// the Handler behind an httptest.Server. While down is set the upstream
// answers downStatus (503 unless set); Close the upstream for a network
// error.
type rig struct {
	t          testing.TB
	up         *httptest.Server
	host       *httptest.Server
	cache      *readcache.Cache
	clock      *clock
	path       string
	down       atomic.Bool
	downStatus atomic.Int32

	mu   sync.Mutex
	seen []*http.Request // requests the upstream got
}

// newRig starts it all; base is the upstream's own path prefix ("/api").
func newRig(t testing.TB, base string, upstream http.HandlerFunc, o readcache.Options, ho readcache.HandlerOptions) *rig {
	t.Helper()
	r := &rig{t: t, clock: newClock(), path: filepath.Join(t.TempDir(), "cache.db")}
	r.up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.Clone(req.Context()))
		r.mu.Unlock()
		if r.down.Load() {
			st := int(r.downStatus.Load())
			if st == 0 {
				st = http.StatusServiceUnavailable
			}
			w.Header().Set("Retry-After", "7")
			http.Error(w, "down for maintenance", st)
			return
		}
		upstream(w, req)
	}))
	t.Cleanup(r.up.Close)
	if o.Now == nil {
		o.Now = r.clock.Now
	}
	if ho.Logger == nil {
		ho.Logger = quiet
	}
	r.cache = mustOpen(t, r.path, o)
	u, err := url.Parse(r.up.URL + base)
	if err != nil {
		t.Fatal(err)
	}
	ho.Upstream, ho.Cache = u, r.cache
	r.host = httptest.NewServer(readcache.Handler(ho))
	t.Cleanup(r.host.Close)
	return r
}

// quiet is the tests' logger: the warnings tests cause are expected.
var quiet = slog.New(slog.DiscardHandler)

func mustOpen(t testing.TB, path string, o readcache.Options) *readcache.Cache {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	c, err := readcache.Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do sends method to the host at path (raw, escapes kept) with header
// pairs, and returns the answer with its body read.
func (r *rig) do(method, path string, header ...string) (*http.Response, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.host.URL+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

func (r *rig) get(path string, header ...string) (*http.Response, string) {
	r.t.Helper()
	return r.do(http.MethodGet, path, header...)
}

// last is the last request the upstream got.
func (r *rig) last() *http.Request {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		r.t.Fatal("the upstream got no request")
	}
	return r.seen[len(r.seen)-1]
}

// wantHeader checks one header of an answer.
func wantHeader(t testing.TB, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Get(name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

// jsonAnswer is an upstream that answers body as JSON with an ETag.
func jsonAnswer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Mon, 30 Nov 2026 09:00:00 GMT")
		w.Header().Set("Cache-Control", "private, max-age=0, must-revalidate")
		w.Header().Set("Set-Cookie", "upstream_session=abc; HttpOnly")
		w.Header().Set("X-Internal", "keep-me-inside")
		io.WriteString(w, body)
	}
}

func newServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }
