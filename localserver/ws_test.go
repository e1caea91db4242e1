package localserver_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
)

func dialWS(t *testing.T, e *env) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(strings.Replace(e.url, "http", "ws", 1)+"/ws",
		http.Header{"Authorization": {"Bearer " + e.token}})
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestWebSocket(t *testing.T) {
	t.Run("a client sees an action's state changes in order", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		c := dialWS(t, e)
		testsupport.WaitFor(t, "subscription", func() bool { return e.host.Hub().Subscribers() == 1 })
		_, a := e.post(testsupport.NewKey(), "message", `{"text":"hi"}`)
		e.req("POST", "/api/sync", nil, nil)
		var states []outbox.State
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for len(states) < 3 {
			var ev localserver.Event
			if err := c.ReadJSON(&ev); err != nil {
				t.Fatalf("read: %v (states so far %v)", err, states)
			}
			if ev.Kind == "action" && ev.Action.ID == a.ID {
				states = append(states, ev.Action.State)
			}
		}
		want := []outbox.State{outbox.Queued, outbox.Syncing, outbox.Synced}
		for i := range want {
			if states[i] != want[i] {
				t.Fatalf("states = %v, want %v", states, want)
			}
		}
	})

	t.Run("a client that stops reading is dropped without stalling others", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		stuck := dialWS(t, e) // never reads
		live := dialWS(t, e)
		testsupport.WaitFor(t, "two subscriptions", func() bool { return e.host.Hub().Subscribers() == 2 })
		// Big events fill the stuck client's socket buffers, then its hub buffer.
		big := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
		const n = 2000
		var seen atomic.Int64
		got := make(chan int64)
		go func() {
			live.SetReadDeadline(time.Now().Add(20 * time.Second))
			for seen.Load() < n {
				var ev localserver.Event
				if err := live.ReadJSON(&ev); err != nil {
					break
				}
				if ev.Kind == "message" {
					seen.Add(1)
				}
			}
			got <- seen.Load()
		}()
		for i := int64(0); i < n; i++ {
			// Keep the live client within its buffer: it reads as fast as it can.
			for i-seen.Load() > 64 {
				time.Sleep(100 * time.Microsecond)
			}
			e.host.Hub().Publish(localserver.Event{Kind: "message", Message: &localserver.Message{Cursor: i, Payload: big}})
		}
		if seen := <-got; seen != n {
			t.Fatalf("the live client saw %d of %d events", seen, n)
		}
		testsupport.WaitFor(t, "the stuck client to be dropped", func() bool { return e.host.Hub().Subscribers() == 1 })
		_ = stuck
	})
}

func TestHub(t *testing.T) {
	t.Run("publish never blocks and drops a full subscriber", func(t *testing.T) {
		h := localserver.NewHub(8, 4)
		slow := h.Subscribe(0)
		fast := h.Subscribe(0)
		done := make(chan int)
		go func() {
			n := 0
			for range fast.C {
				n++
			}
			done <- n
		}()
		for i := 0; i < 100; i++ {
			h.Publish(localserver.Event{Kind: "status"})
			time.Sleep(100 * time.Microsecond)
		}
		if _, ok := <-drain(slow.C); ok {
			t.Fatal("slow subscriber's channel still open after overflowing")
		}
		fast.Close()
		if n := <-done; n != 100 {
			t.Fatalf("fast subscriber got %d events, want 100", n)
		}
	})

	t.Run("a reconnecting client gets what it missed, or a resync", func(t *testing.T) {
		h := localserver.NewHub(5, 16)
		for i := 0; i < 10; i++ {
			h.Publish(localserver.Event{Kind: "status"})
		}
		s := h.Subscribe(7)
		for _, want := range []int64{8, 9, 10} {
			if ev := <-s.C; ev.Seq != want {
				t.Fatalf("replayed seq %d, want %d", ev.Seq, want)
			}
		}
		s.Close()
		s = h.Subscribe(2) // 3..5 are forgotten
		if ev := <-s.C; ev.Kind != "resync" {
			t.Fatalf("first event = %+v, want resync", ev)
		}
		s.Close()
		s.Close() // twice is fine
	})

	t.Run("a client of a restarted host, whose numbers began again, gets a resync", func(t *testing.T) {
		h := localserver.NewHub(5, 16) // a new host: seq 0
		h.Publish(localserver.Event{Kind: "status"})
		s := h.Subscribe(40) // the page saw seq 40 from the host before the restart
		defer s.Close()
		if ev := <-s.C; ev.Kind != "resync" {
			t.Fatalf("first event = %+v, want resync", ev)
		}
	})
}

// drain reads c until it is closed, then yields once more on the returned channel.
func drain(c <-chan localserver.Event) <-chan localserver.Event {
	out := make(chan localserver.Event)
	go func() {
		for range c {
		}
		close(out)
	}()
	return out
}
