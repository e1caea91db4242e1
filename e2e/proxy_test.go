package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// frontProxy stands between the browser and the host when a test needs the
// host to misbehave or needs to count what reaches it. It forwards
// everything (WebSockets too), rewriting Origin to the host's own so the
// host's checks pass. While the host is down it closes connections without
// an answer, so the browser sees the host as unreachable, as without it.
type frontProxy struct {
	srv  *httptest.Server
	rp   *httputil.ReverseProxy
	host string // the host's origin

	// unavailable makes the proxy answer 503 to POST /api/actions and
	// POST /api/actions/batch, as a host that cannot take writes would.
	unavailable atomic.Bool

	// upstreamStatus, when set, is the status the proxy answers to every
	// write to /upstream/ (503, 429), as a host that cannot take writes
	// would; 0 forwards them.
	upstreamStatus atomic.Int32

	// cancelTwice forwards each POST /api/actions/{id}/cancel twice and
	// answers with the host's second answer, as when another client (or a
	// second click) cancelled it first: the host's own 409.
	cancelTwice atomic.Bool

	messagesGets   atomic.Int64 // GET /api/messages seen
	refusedBatches atomic.Int64 // batches answered 503 by the proxy

	mu       sync.Mutex
	acked    map[string]int // per key: batches that carried it and that the host answered 200
	order    []string       // keys in the order the host first acknowledged them
	replayed map[string]int // per key: sw-sync.js replays (/upstream/ writes, Prefer: respond-async) the host answered 2xx
}

func newFrontProxy(t testing.TB, hostOrigin string) *frontProxy {
	target, err := url.Parse(hostOrigin)
	if err != nil {
		t.Fatal(err)
	}
	p := &frontProxy{host: hostOrigin, acked: map[string]int{}, replayed: map[string]int{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			if r.In.Header.Get("Origin") != "" {
				r.Out.Header.Set("Origin", hostOrigin)
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// Unreachable: drop the connection, as a closed port would.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *frontProxy) URL() string { return p.srv.URL }

func (p *frontProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/messages":
		p.messagesGets.Add(1)
	case r.Method == http.MethodPost && (r.URL.Path == "/api/actions" || r.URL.Path == "/api/actions/batch") && p.unavailable.Load():
		if r.URL.Path == "/api/actions/batch" {
			p.refusedBatches.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"unavailable","message":"try again later"}}`)
		return
	case r.Method == http.MethodPost && r.URL.Path == "/api/actions/batch":
		p.forwardBatch(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/upstream/") && r.Method != http.MethodGet && r.Method != http.MethodHead && p.upstreamStatus.Load() != 0:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(int(p.upstreamStatus.Load()))
		io.WriteString(w, `{"error":{"code":"unavailable","message":"the host cannot take writes right now"}}`)
		return
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/cancel") && p.cancelTwice.Load():
		first := httptest.NewRecorder()
		p.rp.ServeHTTP(first, r.Clone(r.Context()))
		p.rp.ServeHTTP(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/upstream/") && r.Header.Get("Prefer") == "respond-async":
		rec := &statusRecorder{ResponseWriter: w}
		p.rp.ServeHTTP(rec, r)
		if rec.status >= 200 && rec.status <= 299 {
			p.mu.Lock()
			p.replayed[r.Header.Get("Idempotency-Key")]++
			p.mu.Unlock()
		}
		return
	}
	p.rp.ServeHTTP(w, r)
}

// forwardBatch forwards a replay batch and, when the host answered 200,
// counts each key it carried.
func (p *frontProxy) forwardBatch(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Actions []struct {
			Key string `json:"key"`
		} `json:"actions"`
	}
	json.Unmarshal(body, &req)
	rec := &statusRecorder{ResponseWriter: w}
	p.rp.ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range req.Actions {
		if p.acked[a.Key] == 0 {
			p.order = append(p.order, a.Key)
		}
		p.acked[a.Key]++
	}
}

// ackedKeys returns how many acknowledged batches carried each key, and the
// keys in the order of their first acknowledgement.
func (p *frontProxy) ackedKeys() (map[string]int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.acked))
	for k, v := range p.acked {
		m[k] = v
	}
	return m, append([]string(nil), p.order...)
}

// replayedKeys returns, per key, how many sw-sync.js replays the host took.
func (p *frontProxy) replayedKeys() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.replayed))
	for k, v := range p.replayed {
		m[k] = v
	}
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
