// Package idemserver is a REST backend for tests that honours
// Idempotency-Key as Stripe does: the first answer per key is stored and
// replayed for every retry, a key still in progress answers 409, and a
// key reused with another request answers 422 (IETF httpapi draft). It
// counts what it applied by key and injects faults on demand. Only tests
// import it.
//
// Because it replays the stored answer, no key is ever applied twice,
// whatever the client does: CountByKey alone cannot catch a client that
// sends a key again after it got its answer. So the server also notes,
// per key, whether a 2xx answer was delivered (written and flushed to
// the client's connection; a dropped connection or an injected fault is
// not), and counts the requests that come for a key after that
// (AfterDelivered).
package idemserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is what the server does to the next matching requests.
type Fault struct {
	Status     int           // answer this status without applying (0: none)
	RetryAfter string        // with Status: a Retry-After header
	Location   string        // with a 3xx Status
	Body       string        // with Status: the body (JSON)
	Drop       bool          // apply, then drop the connection without an answer
	Delay      time.Duration // wait before answering (until the client gives up)
	Key        string        // only requests with this Idempotency-Key ("": every request)
}

// Record is one applied write.
type Record struct {
	Key    string
	Method string
	Path   string
	Body   string
	Header http.Header
}

type stored struct {
	fingerprint [32]byte
	status      int
	body        []byte
	location    string
	delivered   bool // a 2xx answer for this key reached the client's connection
}

// Server is the backend. Create it with Start.
type Server struct {
	URL string

	mu       sync.Mutex
	fault    *Fault
	applied  []Record
	byKey    map[string]*stored
	again    map[string]int // requests for a key after a 2xx for it was delivered
	requests int
	seenHdr  []http.Header // every request's headers, in order
	nextID   int
	latency  time.Duration
}

// SetLatency delays every write by d (not a fault: a slow backend).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Start runs a server until the test ends.
func Start(tb testing.TB) *Server {
	s := newServer()
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

func newServer() *Server {
	return &Server{byKey: map[string]*stored{}, again: map[string]int{}}
}

// StartAt runs a server on addr (an address a host already points at)
// until the test ends.
func StartAt(tb testing.TB, addr string) *Server {
	s := newServer()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("listen on %s: %v", addr, err)
	}
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: s}}
	ts.Start()
	tb.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// SetFault makes the server misbehave (nil: behave).
func (s *Server) SetFault(f *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Applied returns the writes applied, in apply order.
func (s *Server) Applied() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.applied...)
}

// Requests is how many requests the server got.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Headers returns the headers of every request received.
func (s *Server) Headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.seenHdr...)
}

// CountByKey is how often each key was applied (once, for a correct host).
func (s *Server) CountByKey() map[string]int {
	out := map[string]int{}
	for _, r := range s.Applied() {
		out[r.Key]++
	}
	return out
}

// AfterDelivered is, per key, how many requests came for it after a 2xx
// answer for it had been delivered: a client that records its answers
// sends none (unless it died between getting one and recording it).
// Requests that met an injected fault count too.
func (s *Server) AfterDelivered() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.again)
}

// SentAfterDelivered is the sum of AfterDelivered.
func (s *Server) SentAfterDelivered() int {
	n := 0
	for _, c := range s.AfterDelivered() {
		n += c
	}
	return n
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	s.requests++
	s.seenHdr = append(s.seenHdr, r.Header.Clone())
	if st, ok := s.byKey[key]; ok && key != "" && st.delivered {
		s.again[key]++
	}
	f, latency := s.fault, s.latency
	s.mu.Unlock()
	if f != nil && f.Key != "" && f.Key != r.Header.Get("Idempotency-Key") {
		f = nil
	}
	if latency > 0 && r.Method != http.MethodGet && r.Method != http.MethodHead {
		time.Sleep(latency)
	}

	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"applied": len(s.Applied())})
		return
	}
	if f != nil && f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if f != nil && f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Location != "" {
			w.Header().Set("Location", f.Location)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		io.WriteString(w, f.Body)
		return
	}
	fp := sha256.Sum256([]byte(r.Method + " " + r.URL.RequestURI() + "\x00" + string(body)))
	s.mu.Lock()
	if key != "" {
		if st, ok := s.byKey[key]; ok {
			s.mu.Unlock()
			if st.fingerprint != fp {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				io.WriteString(w, `{"error":"Idempotency-Key reused with another request"}`)
				return
			}
			s.answer(w, key, st) // the first answer, replayed
			return
		}
	}
	if bytes.Contains(body, []byte(`"invalid"`)) {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"message":"title is required"}`)
		return
	}
	s.nextID++
	id := s.nextID
	st := &stored{fingerprint: fp, status: http.StatusCreated,
		location: strings.TrimRight(r.URL.Path, "/") + "/" + strconv.Itoa(id),
		body:     []byte(fmt.Sprintf(`{"id":%d,"received":%s}`, id, jsonOr(body)))}
	if r.Method != http.MethodPost {
		st.status, st.location = http.StatusOK, ""
	}
	s.applied = append(s.applied, Record{Key: key, Method: r.Method, Path: r.URL.RequestURI(), Body: string(body), Header: r.Header.Clone()})
	if key != "" {
		s.byKey[key] = st
	}
	s.mu.Unlock()
	if f != nil && f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	s.answer(w, key, st)
}

// answer writes st and, once it is flushed to the connection without an
// error, notes it delivered for key. (Flushed is as far as a server can
// see: a client killed before it read the answer from its socket counts
// as having had it.)
func (s *Server) answer(w http.ResponseWriter, key string, st *stored) {
	w.Header().Set("Content-Type", "application/json")
	if st.location != "" {
		w.Header().Set("Location", st.location)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(st.body))) // the flush below must not make it chunked
	w.WriteHeader(st.status)
	if _, err := w.Write(st.body); err != nil {
		return
	}
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	if key != "" && st.status/100 == 2 {
		s.mu.Lock()
		st.delivered = true
		s.mu.Unlock()
	}
}

func jsonOr(b []byte) string {
	if json.Valid(b) && len(b) > 0 {
		return string(b)
	}
	q, _ := json.Marshal(string(b))
	return string(q)
}
