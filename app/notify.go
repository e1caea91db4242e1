package app

import (
	"fmt"
	"sync"
	"time"

	"synctray/localserver/clock"
)

// Notification is one desktop notification. Kind groups them ("synced",
// "rejected", "blocked", "message", "error"): a desktop that supports it
// replaces the notification of a kind shown before by the next one of
// that kind, instead of stacking them.
type Notification struct {
	Kind  string
	Title string
	Body  string
}

// notifier coalesces desktop notifications: the first event of a kind
// opens a window; when it closes, one notification sums up every event of
// that kind seen in it. So a burst (a backlog rejected, a flood of
// inbound messages) is one notification, not hundreds.
type notifier struct {
	window time.Duration
	clock  clock.Clock
	send   func(Notification)

	mu      sync.Mutex
	pending map[string]*burst
	stopped bool
}

type burst struct {
	events int    // events seen
	total  int    // sum of their counts (actions synced)
	first  string // the first event's text
	timer  clock.Timer
	stop   chan struct{} // closed when the burst is dropped
}

func newNotifier(window time.Duration, clk clock.Clock, send func(Notification)) *notifier {
	return &notifier{window: window, clock: clk, send: send, pending: map[string]*burst{}}
}

// add records an event of a kind ("synced", "rejected", "message").
func (n *notifier) add(kind string, count int, text string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	b := n.pending[kind]
	if b == nil {
		b = &burst{first: text, timer: n.clock.NewTimer(n.window), stop: make(chan struct{})}
		n.pending[kind] = b
		go func() {
			select {
			case <-b.timer.C():
				n.flush(kind)
			case <-b.stop:
			}
		}()
	}
	b.events++
	b.total += count
}

func (n *notifier) flush(kind string) {
	n.mu.Lock()
	b := n.pending[kind]
	delete(n.pending, kind)
	stopped := n.stopped
	n.mu.Unlock()
	if b == nil || stopped {
		return
	}
	title, body := summary(kind, b)
	n.send(Notification{Kind: kind, Title: title, Body: body})
}

// stop drops what is pending; nothing is sent after it.
func (n *notifier) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = true
	for k, b := range n.pending {
		b.timer.Stop()
		close(b.stop)
		delete(n.pending, k)
	}
}

// summary is the notification for a burst of events of one kind.
func summary(kind string, b *burst) (title, body string) {
	switch kind {
	case "synced":
		return "Back online", plural(b.total, "action") + " synced"
	case "rejected":
		if b.events == 1 {
			return "Upstream rejected an action", b.first
		}
		return fmt.Sprintf("Upstream rejected %s", plural(b.events, "action")),
			"First: " + b.first + ". Open Outbox to retry or cancel them."
	case "blocked":
		return "Sync blocked", b.first
	case "message":
		if b.events == 1 {
			return "New message", b.first
		}
		return count(b.events) + " new messages", b.first + " …"
	}
	return kind, b.first
}
