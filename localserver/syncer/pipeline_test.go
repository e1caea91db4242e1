package syncer_test

import (
	"context"
	"encoding/json"
	"errors"
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
	mu    sync.Mutex
	seen  []string
	hold  map[string]chan struct{}
	fails int // the first fails requests meet a network error
}

func (f *fakeForwarder) Deliver(ctx context.Context, a outbox.Action) (json.RawMessage, error) {
	f.mu.Lock()
	f.seen = append(f.seen, a.Key)
	h := f.hold[a.Key]
	fail := f.fails > 0
	f.fails--
	f.mu.Unlock()
	if fail {
		return nil, errors.New("dial tcp 127.0.0.1:9: connection refused")
	}
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

// slowStore is an outbox whose Complete waits while gate is open (not
// closed), then delay.
type slowStore struct {
	outbox.Store
	gate  chan struct{}
	delay time.Duration
}

func (s slowStore) Complete(ctx context.Context, outs []outbox.Outcome) error {
	if s.gate != nil {
		<-s.gate
	}
	time.Sleep(s.delay)
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

	t.Run("a slow commit does not hold back requests, and bounds what waits for it", func(t *testing.T) {
		fw := &fakeForwarder{}
		gate := make(chan struct{})
		var open sync.Once
		e := httpEnv(t, func(s outbox.Store) outbox.Store { return slowStore{s, gate, 0} }, fw, syncer.Options{Concurrency: 1})
		acts := e.enqueue(300, `{}`)
		e.run()
		t.Cleanup(func() { open.Do(func() { close(gate) }) }) // before the engine stops
		// One claim holds 64 writes with one in flight: a drain that
		// waited for each claim's commit would stop at 64.
		testsupport.WaitFor(t, "more writes sent than one claim while the first commit waits", func() bool {
			return len(fw.sent()) > 64
		})
		time.Sleep(100 * time.Millisecond) // let it go as far as it will
		if n := len(fw.sent()); n > 2*64 {
			t.Fatalf("%d writes sent while nothing could be recorded; want at most 128 (64 answered and waiting, 64 claimed)", n)
		}
		if c := e.counts(); c[outbox.Synced] != 0 {
			t.Fatalf("counts %v: nothing should be recorded yet", c)
		}
		open.Do(func() { close(gate) })
		testsupport.WaitFor(t, "all recorded once the disk catches up", func() bool { return e.counts()[outbox.Synced] == len(acts) })
		if n := len(fw.sent()); n != len(acts) {
			t.Fatalf("%d requests for %d writes, want one each", n, len(acts))
		}
		for i, k := range fw.sent() {
			if k != acts[i].Key {
				t.Fatalf("write %d sent was %s, want %s: one in flight keeps the queue's order, each once", i, k, acts[i].Key)
			}
		}
	})

	t.Run("a write that failed is claimed again after the backoff, even when its requeue is recorded late", func(t *testing.T) {
		fw := &fakeForwarder{fails: 1}
		e := httpEnv(t, func(s outbox.Store) outbox.Store { return slowStore{s, nil, 50 * time.Millisecond} }, fw,
			syncer.Options{Concurrency: 1, MinBackoff: time.Second})
		e.enqueue(1, `{}`)
		e.run()
		testsupport.WaitFor(t, "the first attempt", func() bool { return len(fw.sent()) == 1 })
		e.advanceUntil("sent again and synced", time.Second, func() bool { return e.counts()[outbox.Synced] == 1 })
		if n := len(fw.sent()); n != 2 {
			t.Fatalf("%d requests, want 2 (a failure, then the retry)", n)
		}
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

func TestHTTPModeAdoptsANewWrite(t *testing.T) {
	newWrite := func() outbox.NewAction {
		return outbox.NewAction{Key: testsupport.NewKey(), Type: "http", Payload: json.RawMessage(`{}`), Claimed: true}
	}
	t.Run("a reserved write is stored claimed and sent without a claim", func(t *testing.T) {
		fw := &fakeForwarder{}
		e := httpEnv(t, nil, fw, syncer.Options{Concurrency: 4})
		if e.eng.Reserve() {
			t.Fatal("Reserve said yes before Run")
		}
		e.run()
		testsupport.WaitFor(t, "a slot", e.eng.Reserve)
		a, created, err := e.db.Enqueue(context.Background(), newWrite())
		if err != nil || !created {
			t.Fatal(created, err)
		}
		e.eng.Adopt(a)
		testsupport.WaitFor(t, "sent and recorded", func() bool { return e.counts()[outbox.Synced] == 1 })
		_, hist, _ := e.db.Get(context.Background(), a.ID)
		var attempts int
		for _, h := range hist {
			if h.To == outbox.Syncing {
				attempts++
			}
		}
		if got := fw.sent(); len(got) != 1 || got[0] != a.Key || attempts != 1 {
			t.Fatalf("sent %v with %d attempts in its history; want it once, one attempt", got, attempts)
		}
	})

	t.Run("no slot with one in flight, while paused, or with a refused token", func(t *testing.T) {
		one := httpEnv(t, nil, &fakeForwarder{}, syncer.Options{Concurrency: 1})
		one.run()
		paused := httpEnv(t, nil, &fakeForwarder{}, syncer.Options{Concurrency: 4, WorkOffline: true})
		paused.run()
		blocked := httpEnv(t, nil, &fakeForwarder{}, syncer.Options{Concurrency: 4,
			Blocked: &syncer.Problem{Code: "unauthorized", Message: "refused"}})
		blocked.run()
		time.Sleep(20 * time.Millisecond) // Run has started
		for name, e := range map[string]*env{"one in flight (order kept)": one, "paused": paused, "blocked": blocked} {
			if e.eng.Reserve() {
				t.Errorf("%s: Reserve said yes", name)
			}
		}
	})

	t.Run("a write adopted while sync is paused waits in the queue", func(t *testing.T) {
		fw := &fakeForwarder{}
		e := httpEnv(t, nil, fw, syncer.Options{Concurrency: 4})
		e.run()
		testsupport.WaitFor(t, "a slot", e.eng.Reserve)
		e.eng.SetWorkOffline(true) // between the reservation and the enqueue
		a, _, err := e.db.Enqueue(context.Background(), newWrite())
		if err != nil {
			t.Fatal(err)
		}
		e.eng.Adopt(a)
		testsupport.WaitFor(t, "queued again", func() bool { return e.counts()[outbox.Queued] == 1 })
		if n := len(fw.sent()); n != 0 {
			t.Fatalf("%d sent while paused", n)
		}
		e.eng.SetWorkOffline(false)
		testsupport.WaitFor(t, "sent once resumed", func() bool { return e.counts()[outbox.Synced] == 1 })
		if n := len(fw.sent()); n != 1 {
			t.Fatalf("sent %d times, want once", n)
		}
	})
}

func TestHTTPModeAnAdoptedWriteIsSentOnce(t *testing.T) {
	// An adoption that lands as a drain ends must be sent by the next
	// drain, not put back in the queue and claimed again.
	fw := &fakeForwarder{}
	e := httpEnv(t, nil, fw, syncer.Options{Concurrency: 4})
	e.run()
	var ids []int64
	for i := range 300 {
		testsupport.WaitFor(t, "a slot", e.eng.Reserve)
		a, _, err := e.db.Enqueue(context.Background(), outbox.NewAction{Key: testsupport.NewKey(), Type: "http", Payload: json.RawMessage(`{}`), Claimed: true})
		if err != nil {
			t.Fatal(err)
		}
		e.eng.Adopt(a)
		ids = append(ids, a.ID)
		if i%3 == 0 { // now and then, let the drain end first
			testsupport.WaitFor(t, "idle", func() bool { return !e.eng.Status().Syncing })
		}
	}
	testsupport.WaitFor(t, "all synced", func() bool { return e.counts()[outbox.Synced] == len(ids) })
	for _, id := range ids {
		a, _, err := e.db.Get(context.Background(), id)
		if err != nil || a.Attempts != 1 {
			t.Fatalf("action %d: %d attempts (%v), want 1", id, a.Attempts, err)
		}
	}
	if n := len(fw.sent()); n != len(ids) {
		t.Fatalf("%d requests for %d writes", n, len(ids))
	}
}
