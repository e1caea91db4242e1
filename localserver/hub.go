package localserver

import (
	"encoding/json"
	"sync"
	"time"

	"synctray/localserver/outbox"
)

// Event is one live message to pages and the tray. Seq increases by one
// per event, so a client that reconnects asks for what it missed with
// ?since=SEQ.
type Event struct {
	Seq     int64          `json:"seq"`
	Kind    string         `json:"kind"` // "action", "status", "message", "report", "resync"
	Action  *outbox.Action `json:"action,omitempty"`
	Status  *Status        `json:"status,omitempty"`
	Message *Message       `json:"message,omitempty"`
	Report  *SyncReport    `json:"report,omitempty"`
}

// Message is an inbound event from the upstream: an action applied there,
// by this host or by another client.
type Message struct {
	Cursor    int64           `json:"cursor"`
	Key       string          `json:"key"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	AppliedAt time.Time       `json:"applied_at"`
	// Own: this host sent it (the echo of our own action), so it is not news.
	Own bool `json:"own"`
}

// Text is the message for a notification: the payload's "text" field when
// it has one, else the JSON itself, shortened to 120 characters.
func (m Message) Text() string {
	var p struct {
		Text string `json:"text"`
	}
	s := string(m.Payload)
	if json.Unmarshal(m.Payload, &p) == nil && p.Text != "" {
		s = p.Text
	}
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "…"
	}
	return s
}

// Hub fans events out to subscribers. Publishing never blocks: each
// subscriber has a buffered channel, and one that falls behind is dropped
// (its channel closed) so it cannot stall the engine or other clients.
type Hub struct {
	mu      sync.Mutex
	seq     int64
	ring    []Event // the most recent events, for reconnects: a circular buffer
	ringMax int
	subs    map[*Subscription]struct{}
	bufSize int
	closed  bool
}

// Subscription receives events on C until it is dropped or closed.
type Subscription struct {
	C   chan Event
	hub *Hub
}

// NewHub returns a hub that remembers the last ringSize events and gives
// each subscriber a buffer of bufSize events (0: 1024 and 256).
func NewHub(ringSize, bufSize int) *Hub {
	if ringSize <= 0 {
		ringSize = 1024
	}
	if bufSize <= 0 {
		bufSize = 256
	}
	return &Hub{ringMax: ringSize, bufSize: bufSize, subs: map[*Subscription]struct{}{}}
}

// Publish numbers ev and sends it to every subscriber.
func (h *Hub) Publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev.Seq = h.seq
	if len(h.ring) < h.ringMax {
		h.ring = append(h.ring, ev)
	} else {
		h.ring[int((ev.Seq-1)%int64(h.ringMax))] = ev
	}
	for s := range h.subs {
		select {
		case s.C <- ev:
		default:
			delete(h.subs, s) // too slow: drop it
			close(s.C)
		}
	}
}

// Subscribe returns a subscription. With since > 0, the events after since
// that the hub still remembers are queued first; if some were forgotten, a
// "resync" event comes first instead, telling the client to reload.
func (h *Hub) Subscribe(since int64) *Subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &Subscription{C: make(chan Event, h.bufSize), hub: h}
	if h.closed {
		close(s.C)
		return s
	}
	if since > h.seq {
		// A client of another hub (the host restarted, its numbers began
		// again): it missed what happened in between.
		s.C <- Event{Seq: h.seq, Kind: "resync"}
	} else if since > 0 && since < h.seq {
		oldest := h.seq - int64(len(h.ring)) + 1 // the ring holds oldest..seq
		if oldest > since+1 || h.seq-since > int64(h.bufSize) {
			s.C <- Event{Seq: h.seq, Kind: "resync"}
		} else {
			for seq := since + 1; seq <= h.seq; seq++ {
				s.C <- h.ring[int((seq-1)%int64(h.ringMax))]
			}
		}
	}
	h.subs[s] = struct{}{}
	return s
}

// Close unsubscribes; C is closed. It is safe to call more than once and
// after the hub dropped the subscription.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.C)
	}
}

// Close ends every subscription (their channels close) and refuses new
// ones: the host is shutting down.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.C)
	}
}

// Closed reports whether Close was called.
func (h *Hub) Closed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Subscribers returns the number of live subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
