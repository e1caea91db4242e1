package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"synctray/internal/sqlitedb"
)

// Store is the upstream's durable state: the keys it has seen with their
// verdicts, the applied actions as a numbered event log, and the Stats
// counters. Implementations are safe for concurrent use: SQLiteStore (one
// process, a file in the data dir) and pgstore.Store (PostgreSQL, shared
// by any number of upstream instances). storetest.Run is the contract
// both pass.
type Store interface {
	// Apply applies a batch in one transaction and returns one result
	// per action, in order. A key seen before (in an earlier batch, on
	// any instance, or earlier in this batch) gets "duplicate" if it was
	// applied, or "rejected" with its original error if it was rejected;
	// an empty key is rejected and not remembered. Each applied action
	// becomes an event; a batch's events get consecutive cursors in batch
	// order, and cursors follow commit order. An error means nothing of
	// the batch was applied.
	Apply(ctx context.Context, actions []Action) ([]Result, error)
	// Events returns up to limit events with cursor > after, in cursor
	// order. limit <= 0 means DefaultLimit; it is capped at MaxLimit.
	// Cursors are gap-free (1, 2, 3, …) and an event never appears below
	// a cursor already returned: a reader that goes on from the last
	// cursor it saw misses nothing.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)
	// Stats returns the counters since the store was created.
	Stats(ctx context.Context) (Stats, error)
	// AppliedKeys returns every applied key, in cursor order.
	AppliedKeys(ctx context.Context) ([]string, error)
	// IntegrityCheck checks the database and returns an error saying
	// what is wrong, if anything.
	IntegrityCheck(ctx context.Context) error
	// Ping checks that the database answers a query before ctx ends (for
	// /healthz); it returns an error after Close.
	Ping(ctx context.Context) error
	// Subscribe returns a channel of the events committed from now on,
	// in cursor order, buffering up to buffer of them, and a function
	// that cancels the subscription (safe to call more than once). The
	// channel is closed when cancelled, when the store closes, and when
	// the subscriber falls behind by more than buffer events; it must
	// then catch up from Events. Events committed just before the call
	// may or may not be delivered: a subscriber catches up from Events
	// after subscribing and skips the cursors it has seen.
	Subscribe(buffer int) (events <-chan Event, cancel func())
	// Close closes every subscription and the database.
	Close() error
}

// ErrNewerSchema marks a database whose schema is newer than this program
// knows (a newer synctray migrated it): opening it is refused.
var ErrNewerSchema = sqlitedb.ErrNewerSchema

// Verdict is what a store remembers for a key: StatusApplied, or
// StatusRejected with the reason.
type Verdict struct {
	Status string
	Error  string
}

// PlannedKey is a key that a batch records when no earlier batch did: its
// verdict and, when applied, the event it becomes (Payload compacted).
type PlannedKey struct {
	Key string
	Verdict
	Type      string
	Payload   json.RawMessage
	CreatedAt time.Time
}

// Plan is a batch decided before it meets the store: both stores run
// their Apply through it, so they answer alike.
type Plan struct {
	actions []Action
	// Keys are the batch's distinct non-empty keys, in first-seen order,
	// each with the verdict it gets if the store has not seen it.
	Keys []PlannedKey
}

// NewPlan validates a batch's actions (a key's first action in the batch
// decides its verdict).
func NewPlan(actions []Action) *Plan {
	p := &Plan{actions: actions}
	seen := make(map[string]bool, len(actions))
	for _, a := range actions {
		if a.Key == "" || seen[a.Key] {
			continue
		}
		seen[a.Key] = true
		k := PlannedKey{Key: a.Key, Type: a.Type, CreatedAt: a.CreatedAt}
		if why := validate(a); why != "" {
			k.Verdict = Verdict{StatusRejected, why}
		} else {
			var buf bytes.Buffer
			json.Compact(&buf, a.Payload) // valid: validate checked it
			k.Verdict, k.Payload = Verdict{Status: StatusApplied}, buf.Bytes()
		}
		p.Keys = append(p.Keys, k)
	}
	return p
}

// KeyNames returns the Keys' names, in order.
func (p *Plan) KeyNames() []string {
	names := make([]string, len(p.Keys))
	for i, k := range p.Keys {
		names[i] = k.Key
	}
	return names
}

// Outcome is a Plan resolved against the store.
type Outcome struct {
	Results []Result     // one per action, in order
	New     []PlannedKey // keys to record, in batch order
	Applied []PlannedKey // the New keys applied: the batch's events, in order
	Delta   Stats        // what the batch adds to the counters
}

// Resolve answers the batch given the verdicts of its keys that the store
// holds already (from earlier batches); the others are new and recorded
// by this batch.
func (p *Plan) Resolve(stored map[string]Verdict) Outcome {
	o := Outcome{Results: make([]Result, len(p.actions))}
	planned := make(map[string]Verdict, len(p.Keys))
	for _, k := range p.Keys {
		planned[k.Key] = k.Verdict
		if _, old := stored[k.Key]; old {
			continue
		}
		o.New = append(o.New, k)
		if k.Status == StatusApplied {
			o.Applied = append(o.Applied, k)
		}
	}
	seen := make(map[string]bool, len(p.Keys))
	for i, a := range p.actions {
		res := Result{Key: a.Key}
		v, old := stored[a.Key]
		if !old {
			v = planned[a.Key]
		}
		switch {
		case a.Key == "": // nothing to remember it by
			res.Status, res.Error = StatusRejected, "empty key"
		case v.Status != StatusApplied:
			res.Status, res.Error = StatusRejected, v.Error
		case old || seen[a.Key]:
			res.Status = StatusDuplicate
		default:
			res.Status = StatusApplied
		}
		seen[a.Key] = true
		switch res.Status {
		case StatusApplied:
			o.Delta.Applied++
		case StatusDuplicate:
			o.Delta.Duplicates++
		default:
			o.Delta.Rejected++
		}
		o.Results[i] = res
	}
	return o
}

// validate returns why an action must be rejected for good, or "".
// Empty keys are handled by Plan.
func validate(a Action) string {
	switch {
	case a.Type == "":
		return "empty type"
	case len(a.Payload) > MaxPayloadBytes:
		return fmt.Sprintf("payload larger than %d bytes", MaxPayloadBytes)
	case !json.Valid(a.Payload):
		return "payload is not valid JSON"
	}
	// The test hook: decoding every object to look for "_reject" was a
	// tenth of the upstream's CPU. A payload without the name spelled out
	// and without a \u escape (the only way to spell its letters
	// otherwise) cannot have it.
	if p := bytes.TrimLeft(a.Payload, " \t\r\n"); len(p) > 0 && p[0] == '{' &&
		(bytes.Contains(p, []byte(`"_reject"`)) || bytes.Contains(p, []byte(`\u`))) {
		var obj map[string]json.RawMessage
		if json.Unmarshal(p, &obj) == nil {
			var msg string
			if raw, ok := obj["_reject"]; ok && json.Unmarshal(raw, &msg) == nil {
				if msg == "" {
					msg = "rejected"
				}
				return msg
			}
		}
	}
	return ""
}

// EventLimit is limit as Store.Events takes it: DefaultLimit for 0 or
// less, at most MaxLimit.
func EventLimit(limit int) int {
	if limit <= 0 {
		return DefaultLimit
	}
	return min(limit, MaxLimit)
}

// Hub hands committed events to subscribers for a Store (see
// Store.Subscribe). Publishing never blocks: a subscriber whose buffer is
// full is dropped, its channel closed. The zero Hub is ready to use.
type Hub struct {
	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed bool
}

// Subscribe implements Store.Subscribe. After Close it returns a closed
// channel.
func (h *Hub) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, max(buffer, 1))
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	if h.subs == nil {
		h.subs = map[chan Event]struct{}{}
	}
	h.subs[ch] = struct{}{}
	return ch, func() { h.drop(ch) }
}

// drop closes ch unless it is closed already.
func (h *Hub) drop(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// Publish hands events, which must be committed and in cursor order, to
// every subscriber. Callers serialize their calls so that subscribers see
// cursor order across calls too.
func (h *Hub) Publish(events []Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		for _, e := range events {
			select {
			case ch <- e:
				continue
			default:
			}
			delete(h.subs, ch)
			close(ch)
			break
		}
	}
}

// Len returns the number of live subscribers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close closes every subscription; later ones get a closed channel.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
