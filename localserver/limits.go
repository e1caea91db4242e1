package localserver

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Limits on connections and request bodies, against clients that hold
// connections open without finishing their requests (slowloris).
const (
	// maxUntrustedConns is how many connections that have not carried an
	// authenticated request the host keeps while they wait for a request;
	// beyond it, the oldest waiting one is closed. It stays well below a
	// 1,024-file limit.
	maxUntrustedConns = 128
	// untrustedGrace is how long a new or idle connection may wait for
	// its request before it can be closed to make room: a client on
	// loopback sends its headers at once.
	untrustedGrace = 100 * time.Millisecond
	// defaultBodyTimeout bounds reading a request body (1 MiB at most).
	defaultBodyTimeout = 30 * time.Second
)

// connLimiter is a listener that caps the connections that have not (yet)
// carried an authenticated request. When a new connection arrives beyond
// the cap, it closes the oldest untrusted ones that are not serving a
// request — waiting for headers, idle between requests, or lingering after
// a refusal — so that slow or idle anonymous clients cannot use up the
// host's file descriptors, while the API token holders and signed-in pages
// keep theirs.
type connLimiter struct {
	net.Listener
	max   int
	grace time.Duration
	log   *slog.Logger

	mu        sync.Mutex
	untrusted list.List // of *limitedConn, oldest first
}

func newConnLimiter(ln net.Listener, max int, grace time.Duration, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, grace: grace, log: log}
}

// limitedConn is a connection the limiter tracks; its fields are guarded
// by the limiter's mutex.
type limitedConn struct {
	net.Conn
	l       *connLimiter
	elem    *list.Element // in l.untrusted; nil once trusted, hijacked or closed
	busy    bool          // serving a request
	since   time.Time     // when it last started waiting for a request
	closing bool          // its write side is closed: the server is done with it
}

// Accept accepts a connection and, when there are too many untrusted
// ones, closes the oldest that may be closed. When the process is out of
// file descriptors, it closes every untrusted connection that may be
// closed and tries again, instead of failing: the server would back off
// for up to a second per failure, and nothing else would free the
// descriptors held by slow clients.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			if l.evict(0) == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l}
		l.mu.Lock()
		lc.since = time.Now()
		lc.elem = l.untrusted.PushBack(lc)
		l.mu.Unlock()
		l.evict(l.max)
		return lc, nil
	}
}

// evict closes the oldest untrusted connections that are not serving a
// request and have waited at least the grace period, or that the server
// is done with, until at most keep are left. It returns how many it closed.
func (l *connLimiter) evict(keep int) int {
	var victims []*limitedConn
	l.mu.Lock()
	now := time.Now()
	for e := l.untrusted.Front(); e != nil && l.untrusted.Len() > keep; {
		next := e.Next()
		if v := e.Value.(*limitedConn); v.closing || !v.busy && now.Sub(v.since) >= l.grace {
			l.untrusted.Remove(e)
			v.elem = nil
			victims = append(victims, v)
		}
		e = next
	}
	l.mu.Unlock()
	for _, v := range victims {
		v.Conn.Close()
	}
	if len(victims) > 0 {
		l.log.Debug("closed waiting anonymous connections to make room", "count", len(victims))
	}
	return len(victims)
}

// connState is the http.Server's ConnState hook.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateActive:
		lc.busy = true
	case http.StateIdle:
		lc.busy, lc.since = false, time.Now()
	case http.StateHijacked, http.StateClosed:
		l.forgetLocked(lc)
	}
}

func (l *connLimiter) forgetLocked(lc *limitedConn) {
	if lc.elem != nil {
		l.untrusted.Remove(lc.elem)
		lc.elem = nil
	}
}

// trust exempts the connection that carried r's request from the cap.
func (l *connLimiter) trust(ctx context.Context) {
	lc, ok := ctx.Value(connKey{}).(*limitedConn)
	if !ok || lc.l != l {
		return
	}
	l.mu.Lock()
	l.forgetLocked(lc)
	l.mu.Unlock()
}

// connKey is the request context key of the connection (see withConn).
type connKey struct{}

// withConn is the http.Server's ConnContext hook: requests know their
// connection, so the guard can trust it.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.forgetLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite lets the server half-close, as it does on the plain TCP
// connection; the connection is then only lingering.
func (c *limitedConn) CloseWrite() error {
	c.l.mu.Lock()
	c.closing = true
	c.l.mu.Unlock()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// bodyDeadline bounds the time to read a request's body: readBody clears
// the deadline once the body is in, so that a long handler (a sync) is not
// cut off. A handler that never reads the body leaves the deadline, which
// then bounds the server's own draining of it.
func bodyDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		next.ServeHTTP(w, r)
	})
}

// closeUnreadBody makes the server close the connection after this answer
// when the request's body was not read, without reading it: by default the
// server would read up to 256 KiB of it first (to reuse the connection),
// which lets a refused client hold the connection by trickling its body.
// The read deadline, moved to now, ends that read at once.
func closeUnreadBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		http.NewResponseController(w).SetReadDeadline(time.Now())
	}
}
