package localserver

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestWebSocketKeepalive(t *testing.T) {
	hub := NewHub(0, 0)
	g := newGuard(strings.Repeat("t", 64), []byte("k"))
	ws := newWSHandler(hub, g, wsOptions{PingEvery: 10 * time.Millisecond, PongWait: 80 * time.Millisecond}, slog.Default())
	ts := httptest.NewServer(ws)
	defer ts.Close()
	addr := ts.Listener.Addr()
	g.setAddr(addr)
	url := "ws://" + addr.String() + "/ws"

	t.Run("a live client answers pings and stays", func(t *testing.T) {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pings := 0
		c.SetPingHandler(func(data string) error {
			pings++
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		// Reading runs the ping handler; nothing else arrives.
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, _, err = c.ReadMessage()
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("read: %v, want our own deadline to expire (the server must not close a live client)", err)
		}
		if pings < 3 {
			t.Fatalf("saw %d pings in 300 ms, want several", pings)
		}
	})

	t.Run("a dead client that never answers pings is dropped", func(t *testing.T) {
		// A raw TCP client: it upgrades, then never reads, so it never pongs.
		conn, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req, _ := http.NewRequest("GET", "http://"+addr.String()+"/ws", nil)
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for hub.Subscribers() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("never subscribed")
			}
			time.Sleep(time.Millisecond)
		}
		for hub.Subscribers() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("a client that never answers pings was not dropped")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
