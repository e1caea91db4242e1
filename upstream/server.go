package upstream

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"synctray/upstream/protocol"
)

// Faults are injected into POST /v1/actions (Down: into every /v1 request).
// Each rate is the probability, decided independently per request, of:
//   - FailRate: 503 without applying;
//   - ThrottleRate: 429 with Retry-After (RetryAfter, default 1s, rounded up
//     to whole seconds, at least 1) without applying;
//   - DropRate: applying the batch, then closing the connection without
//     answering (applied but unacknowledged).
//
// Latency is slept before handling.
type Faults struct {
	FailRate, DropRate, ThrottleRate float64
	Latency, RetryAfter              time.Duration
	Down                             bool
}

// Options configure a Server. Zero values: no auth, no faults,
// slog.Default(), and the Host check described at AllowedHosts.
type Options struct {
	Token  string
	Faults Faults
	Logger *slog.Logger

	// AllowedHosts are Host header values accepted besides the default
	// ones: "name" accepts name with any port, "name:port" only that port.
	// By default a request is accepted only when its Host names the address
	// it arrived on (IP and port) or, when that address is loopback,
	// localhost or a loopback IP with that port: a web page cannot reach the
	// server under a DNS name it controls (DNS rebinding).
	AllowedHosts []string
	// InsecureSkipHostCheck accepts any Host header, e.g. behind a reverse
	// proxy that checks it.
	InsecureSkipHostCheck bool
}

// hostPattern is one parsed entry of Options.AllowedHosts; an empty port
// matches any.
type hostPattern struct{ name, port string }

// WebSocket timing.
var (
	wsWriteWait  = protocol.WSWriteWait
	wsPongWait   = protocol.WSPongWait
	wsPingPeriod = wsPongWait * 9 / 10
)

// wsSubBuffer is how many live events are buffered per subscriber.
const wsSubBuffer = 4 * MaxBatch

// Server is the upstream's HTTP handler.
type Server struct {
	store   Store
	token   []byte
	log     *slog.Logger
	hosts   []hostPattern // Options.AllowedHosts
	anyHost bool          // Options.InsecureSkipHostCheck
	faults  atomic.Pointer[Faults]
	mux     *http.ServeMux
	up      websocket.Upgrader
	subBuf  int // live events buffered per WebSocket subscriber
	metrics *metrics

	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
	closed bool
}

// NewServer returns a handler serving protocol v1 from store.
func NewServer(store Store, opts Options) *Server {
	s := &Server{
		store:   store,
		token:   []byte(opts.Token),
		log:     opts.Logger,
		anyHost: opts.InsecureSkipHostCheck,
		mux:     http.NewServeMux(),
		conns:   map[*websocket.Conn]struct{}{},
		subBuf:  wsSubBuffer,
		up: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			// Its clients are programs, which send no Origin; a browser
			// always does. ServeHTTP refuses those before this point too.
			CheckOrigin: func(r *http.Request) bool {
				_, browser := r.Header["Origin"]
				return !browser
			},
			Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
				writeError(w, status, "bad_request", reason.Error())
			},
		},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, h := range opts.AllowedHosts {
		name, port := splitHost(h, "")
		if name != "" {
			s.hosts = append(s.hosts, hostPattern{name, port})
		}
	}
	s.SetFaults(opts.Faults)
	s.metrics = newMetrics(store, s.subscribers, s.log)
	s.route("POST", "/v1/actions", s.v1(s.handleActions))
	s.route("GET", "/v1/events", s.v1(s.handleEvents))
	s.route("GET", "/v1/events/ws", s.v1(s.handleWS))
	s.route("GET", "/v1/stats", s.v1(s.handleStats))
	s.route("GET", "/metrics", s.auth(s.metrics.handler(s.log.With("component", "metrics")).ServeHTTP))
	// /healthz needs no token, for load balancers: it says only whether
	// this instance and its database answer.
	s.route("GET", "/healthz", s.handleHealth)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
	})
	return s
}

// route registers h for method and path, and a JSON 405 for other methods.
func (s *Server) route(method, path string, h http.HandlerFunc) {
	s.mux.HandleFunc(method+" "+path, h)
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" not allowed on "+path)
	})
}

// ServeHTTP implements http.Handler. It refuses, before anything else, a
// Host that is not this server (403 forbidden_host) and any request a
// browser makes for a web page (403 forbidden_origin): the upstream's
// clients are synctray hosts and other programs, never pages.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r) {
		s.log.Debug("refused request for another host", "host", r.Host, "path", r.URL.Path, "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "forbidden_host", fmt.Sprintf("host %q is not this upstream", r.Host))
		return
	}
	if fromBrowserPage(r) {
		s.log.Debug("refused request from a web page", "origin", r.Header.Get("Origin"), "path", r.URL.Path, "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "forbidden_origin", "requests from web pages are not allowed")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// hostAllowed applies the Host check described at Options.AllowedHosts.
func (s *Server) hostAllowed(r *http.Request) bool {
	if s.anyHost {
		return true
	}
	defPort := "80"
	if r.TLS != nil {
		defPort = "443"
	}
	name, port := splitHost(r.Host, defPort)
	if name == "" {
		return false
	}
	for _, p := range s.hosts {
		if p.name == name && (p.port == "" || p.port == port) {
			return true
		}
	}
	// The address this connection arrived on (not the listener's, which
	// may be 0.0.0.0).
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lhost, lport, err := net.SplitHostPort(local.String())
	lip := net.ParseIP(lhost)
	if err != nil || lip == nil || port != lport {
		return false
	}
	ip := net.ParseIP(name)
	if ip != nil && ip.Equal(lip) {
		return true
	}
	return lip.IsLoopback() && (name == "localhost" || ip != nil && ip.IsLoopback())
}

// splitHost splits a Host header value (or an AllowedHosts entry) into a
// lower-case name without brackets and a port, defPort when it has none.
func splitHost(h, defPort string) (name, port string) {
	h = strings.ToLower(strings.TrimSpace(h))
	if n, p, err := net.SplitHostPort(h); err == nil {
		return n, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defPort
}

// fromBrowserPage reports whether a browser sent r on behalf of a page:
// browsers add Origin to every cross-origin request and to every POST, and
// Sec-Fetch-Site to every request; programs send neither. A navigation
// typed by the user (Sec-Fetch-Site: none) is let through.
func fromBrowserPage(r *http.Request) bool {
	if _, ok := r.Header["Origin"]; ok {
		return true
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

// SetFaults replaces the injected faults; safe to call at any time.
func (s *Server) SetFaults(f Faults) {
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Second
	}
	s.faults.Store(&f)
}

// Close closes every live WebSocket subscriber and refuses new ones.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

// subscribers returns the number of live WebSocket subscribers.
func (s *Server) subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// HealthTimeout bounds the database ping of GET /healthz.
const HealthTimeout = 2 * time.Second

// handleHealth answers 200 {"ok":true} when the store answers a ping
// within HealthTimeout, else 503 with a short JSON error (the cause is
// logged, not shown: it may name the database).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("health check: the database does not answer", "err", err)
		writeError(w, http.StatusServiceUnavailable, "database_unreachable", "the database does not answer")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// v1 wraps a /v1 handler with the Down fault and bearer authentication.
func (s *Server) v1(h http.HandlerFunc) http.HandlerFunc {
	authed := s.auth(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if s.faults.Load().Down {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "upstream is down (injected fault)")
			return
		}
		authed(w, r)
	}
}

// auth wraps h with bearer authentication, when a token is configured.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(s.token) > 0 {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.token) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="synctray-upstream"`)
				writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
				return
			}
		}
		h(w, r)
	}
}

func roll(p float64) bool { return p > 0 && rand.Float64() < p }

func (s *Server) handleActions(w http.ResponseWriter, r *http.Request) {
	// A browser can send text/plain, form and multipart bodies across sites
	// without asking (a "simple" request); JSON needs its permission.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return
	}
	var req actionsRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON body")
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "malformed JSON: "+err.Error())
		return
	}
	if len(req.Actions) > MaxBatch {
		writeError(w, http.StatusBadRequest, "too_many_actions", fmt.Sprintf("%d actions; at most %d per batch", len(req.Actions), MaxBatch))
		return
	}

	// Faults come after reading the body: only then does net/http watch the
	// connection, so that a client giving up during Latency cancels r.Context().
	f := *s.faults.Load()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	fail, throttle, drop := roll(f.FailRate), roll(f.ThrottleRate), roll(f.DropRate)
	if fail {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "injected failure")
		return
	}
	if throttle {
		secs := max(1, int(math.Ceil(f.RetryAfter.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, "throttled", "injected throttling")
		return
	}

	start := time.Now()
	results, err := s.store.Apply(r.Context(), req.Actions)
	if err != nil {
		s.metrics.batchErr.Inc()
		s.log.Error("apply batch", "err", err, "actions", len(req.Actions))
		writeError(w, http.StatusInternalServerError, "internal", "could not apply the batch")
		return
	}
	s.metrics.batch(results, time.Since(start))
	if drop {
		s.log.Info("injected fault: dropping connection after apply", "actions", len(req.Actions))
		s.dropConn(w)
		return
	}
	writeJSON(w, http.StatusOK, actionsResponse{Results: results})
}

// dropConn closes the client connection without writing a response.
func (s *Server) dropConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort the stream, the documented way to
		// end a handler without a response.
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := queryInt(q.Get("after"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "after: "+err.Error())
		return
	}
	limit, err := queryInt(q.Get("limit"), DefaultLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "limit: "+err.Error())
		return
	}
	events, err := s.store.Events(r.Context(), after, int(min(max(limit, 0), MaxLimit)))
	if err != nil {
		s.log.Error("list events", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not list events")
		return
	}
	next := after
	if len(events) > 0 {
		next = events[len(events)-1].Cursor
	}
	writeJSON(w, http.StatusOK, eventsResponse{Events: events, Next: next})
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.Stats(r.Context())
	if err != nil {
		s.log.Error("read stats", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not read stats")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleWS streams every event after ?after=, then live ones. Live events
// come from a buffered store subscription; a subscriber that falls behind
// is dropped with close code 1013 (try again later) and reconnects.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	after, err := queryInt(r.URL.Query().Get("after"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "after: "+err.Error())
		return
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "server is closing")
		return
	}
	conn, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	defer conn.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.conns[conn] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The reader handles pongs and close frames and notices dead peers.
	go func() {
		defer cancel()
		conn.SetReadLimit(4096)
		conn.SetReadDeadline(time.Now().Add(wsPongWait))
		conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()

	last := after
	send := func(e Event) error {
		conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
		if err := conn.WriteJSON(e); err != nil {
			return err
		}
		last = e.Cursor
		return nil
	}
	catchUp := func() error {
		for {
			events, err := s.store.Events(ctx, last, MaxLimit)
			if err != nil {
				return err
			}
			for _, e := range events {
				if err := send(e); err != nil {
					return err
				}
			}
			if len(events) < MaxLimit {
				return nil
			}
		}
	}
	// Catch up once before subscribing so that a long backlog does not
	// overflow the live buffer, then once more to close the gap.
	if err := catchUp(); err != nil {
		s.log.Debug("websocket backlog", "err", err)
		return
	}
	live, cancelSub := s.store.Subscribe(s.subBuf)
	defer cancelSub()
	if err := catchUp(); err != nil {
		s.log.Debug("websocket backlog", "err", err)
		return
	}

	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	for {
		select {
		case e, ok := <-live:
			if !ok {
				s.log.Info("websocket subscriber fell behind; dropping it", "last", last)
				msg := websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "fell behind; reconnect")
				conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wsWriteWait))
				return
			}
			if e.Cursor <= last {
				continue
			}
			if err := send(e); err != nil {
				s.log.Debug("websocket write", "err", err)
				return
			}
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func queryInt(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}
