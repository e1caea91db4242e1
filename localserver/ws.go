package localserver

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// wsOptions tune the WebSocket keepalive; zero values are the defaults.
type wsOptions struct {
	PingEvery  time.Duration // 0: 25s
	PongWait   time.Duration // 0: 60s
	WriteWait  time.Duration // 0: 10s
	MaxMessage int64         // 0: 4 KiB (clients only send control frames)
}

type wsHandler struct {
	hub *Hub
	g   *guard
	o   wsOptions
	log *slog.Logger
	up  websocket.Upgrader
}

func newWSHandler(hub *Hub, g *guard, o wsOptions, log *slog.Logger) *wsHandler {
	if o.PingEvery <= 0 {
		o.PingEvery = 25 * time.Second
	}
	if o.PongWait <= 0 {
		o.PongWait = 60 * time.Second
	}
	if o.WriteWait <= 0 {
		o.WriteWait = 10 * time.Second
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = 4 << 10
	}
	h := &wsHandler{hub: hub, g: g, o: o, log: log}
	// The guard has already checked Origin; check it again here so the
	// upgrader never falls back to accepting anything.
	h.up = websocket.Upgrader{CheckOrigin: g.originAllowed}
	return h
}

// ServeHTTP upgrades to a WebSocket and streams hub events as JSON text
// messages. ?since=SEQ replays what the client missed.
func (h *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	conn, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	// The upgrader has cleared the server's deadlines: from here on the
	// keepalive below sets them.
	//
	// A socket opened with a session cookie ends when sessions are
	// revoked. Checking the cookie again after taking the revocation
	// channel closes the gap with a revocation since the guard's check.
	var revoked <-chan struct{}
	if cookie := h.g.sessionCookieValue(r); r.Header.Get("Authorization") == "" && cookie != "" {
		revoked = h.g.sessionsRevoked()
		if !h.g.validSession(cookie) {
			closeSessionRevoked(conn)
			return
		}
	}
	sub := h.hub.Subscribe(since)
	defer sub.Close()

	// One reader: it handles control frames and notices a closed peer.
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn.SetReadLimit(h.o.MaxMessage)
		conn.SetReadDeadline(time.Now().Add(h.o.PongWait))
		conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(h.o.PongWait)) })
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()

	ping := time.NewTicker(h.o.PingEvery)
	defer ping.Stop()
	for {
		select {
		case <-done:
			return
		case ev, ok := <-sub.C:
			if !ok { // dropped for being too slow, or the host is stopping
				msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "too slow: reconnect with ?since")
				if h.hub.Closed() {
					msg = websocket.FormatCloseMessage(websocket.CloseGoingAway, "host shutting down")
				}
				conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
				return
			}
			conn.SetWriteDeadline(time.Now().Add(h.o.WriteWait))
			if err := conn.WriteJSON(ev); err != nil {
				return
			}
		case <-revoked:
			closeSessionRevoked(conn)
			return
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.o.WriteWait)); err != nil {
				return
			}
		}
	}
}

func closeSessionRevoked(conn *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "signed out: open synctray again")
	conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}
