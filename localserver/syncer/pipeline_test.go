package syncer_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

// fakeForwarder is an HTTP backend for HTTP mode: it answers 201 and
// records the keys it was sent, in order. A key in hold waits until its
// channel is closed.
type fakeForwarder struct {
	mu   sync.Mutex
	seen []string
	hold map[string]chan struct{}
}

func (f *fakeForwarder) Deliver(ctx context.Context, a outbox.Action) (json.RawMessage, error) {
	f.mu.Lock()
	f.seen = append(f.seen, a.Key)
	h := f.hold[a.Key]
	f.mu.Unlock()
	if h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return json.RawMessage(`{"status":201}`), nil
}

func (f *fakeForwarder) Health(context.Context) error { return nil }

func (f *fakeForwarder) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// slowStore is an outbox whose Complete waits while gate is open (not closed).
type slowStore struct {
	outbox.Store
	gate chan struct{}
}

func (s slowStore) Complete(ctx context.Context, outs []outbox.Outcome) error {
	<-s.gate
	return s.Store.Complete(ctx, outs)
}

func httpEnv(t *testing.T, store func(outbox.Store) outbox.Store, fw *fakeForwarder, o syncer.Options) *env {
	e := newEnv(t, syncer.Options{})
	o.Clock, o.Jitter = e.clk, func() float64 { return 1 }
	s := outbox.Store(e.db)
	if store != nil {
		s = store(e.db)
	}
	e.eng = syncer.NewHTTP(s, fw, o)
	return e
}

func TestHTTPModePipeline(t *testing.T) {
	t.Run("a write queued while others are in flight goes out at once, not after them", func(t *testing.T) {
		fw := &fakeForwarder{hold: map[string]chan struct{}{}}
		e := httpEnv(t, nil, fw, syncer.Options{Concurrency: 4})
		first := testsupport.NewKey()
		release := make(chan struct{})
		fw.hold[first] = release
		defer close(release)
		e.run()
		if _, _, err := e.db.Enqueue(context.Background(), outbox.NewAction{Key: first, Type: "http", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		e.eng.Kick()
		testsupport.WaitFor(t, "the first write in flight", func() bool { return len(fw.sent()) == 1 })
		later := e.enqueue(1, `{}`)[0]
		testsupport.WaitFor(t, "the later write sent while the first is in flight", func() bool {
			return slices.Contains(fw.sent(), later.Key)
		})
		testsupport.WaitFor(t, "the later write recorded as synced", func() bool { return e.counts()[outbox.Synced] == 1 })
	})

	t.Run("a slow commit does not hold back requests", func(t *testing.T) {
		fw := &fakeForwarder{}
		gate := make(chan struct{})
		e := httpEnv(t, func(s outbox.Store) outbox.Store { return slowStore{s, gate} }, fw, syncer.Options{Concurrency: 1})
		acts := e.enqueue(150, `{}`) // more than one claim (64 with one in flight)
		e.run()
		testsupport.WaitFor(t, "every write sent while the first outcome is still being committed", func() bool {
			return len(fw.sent()) == len(acts)
		})
		if c := e.counts(); c[outbox.Synced] != 0 {
			t.Fatalf("counts %v: nothing should be recorded yet", c)
		}
		for i, k := range fw.sent() {
			if k != acts[i].Key {
				t.Fatalf("write %d sent was %s, want %s: one in flight keeps the queue's order", i, k, acts[i].Key)
			}
		}
		close(gate)
		testsupport.WaitFor(t, "all recorded once the disk catches up", func() bool { return e.counts()[outbox.Synced] == len(acts) })
	})

	t.Run("work offline stops a replay between writes", func(t *testing.T) {
		fw := &fakeForwarder{hold: map[string]chan struct{}{}}
		e := httpEnv(t, nil, fw, syncer.Options{Concurrency: 1})
		acts := e.enqueue(500, `{}`)
		release := make(chan struct{})
		fw.hold[acts[10].Key] = release
		e.run()
		testsupport.WaitFor(t, "the replay under way", func() bool { return len(fw.sent()) == 11 })
		e.eng.SetWorkOffline(true)
		close(release)
		testsupport.WaitFor(t, "the replay to stop", func() bool { return !e.eng.Status().Syncing })
		time.Sleep(50 * time.Millisecond) // nothing more may go out
		sent := len(fw.sent())
		if sent != 11 {
			t.Fatalf("%d writes sent after the user paused at the 11th; want 11", sent)
		}
		c := e.counts()
		if c[outbox.Synced] != 11 || c[outbox.Queued] != len(acts)-11 {
			t.Fatalf("counts %v: want 11 synced and the rest queued again", c)
		}
		e.eng.SetWorkOffline(false)
		testsupport.WaitFor(t, "the rest once resumed", func() bool { return e.counts()[outbox.Synced] == len(acts) })
		for i, k := range fw.sent() {
			if k != acts[i].Key {
				t.Fatalf("write %d sent was %s, want %s (order, each once)", i, k, acts[i].Key)
			}
		}
	})
}
