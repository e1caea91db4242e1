package syncer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver/clock"
	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
	"synctray/localserver/syncer"
	"synctray/upstream/protocol"
)

// fakeUpstream records what it receives and answers what the test says.
type fakeUpstream struct {
	mu      sync.Mutex
	err     error // returned by Send while set
	healthy bool
	seen    []string // keys in the order received
	applied map[string]bool
	sends   int
	// refuse, when set, may refuse a whole batch (a batch-level error).
	refuse func([]protocol.Action) error
}

var _ syncer.Upstream = (*fakeUpstream)(nil)

func newFake() *fakeUpstream { return &fakeUpstream{healthy: true, applied: map[string]bool{}} }

func (f *fakeUpstream) Send(ctx context.Context, acts []protocol.Action) ([]protocol.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends++
	if f.err != nil {
		return nil, f.err
	}
	if f.refuse != nil {
		if err := f.refuse(acts); err != nil {
			return nil, err
		}
	}
	res := make([]protocol.Result, len(acts))
	for i, a := range acts {
		f.seen = append(f.seen, a.Key)
		var p struct {
			Reject string `json:"_reject"`
		}
		json.Unmarshal(a.Payload, &p)
		switch {
		case p.Reject != "":
			res[i] = protocol.Result{Key: a.Key, Status: protocol.StatusRejected, Error: p.Reject}
		case f.applied[a.Key]:
			res[i] = protocol.Result{Key: a.Key, Status: protocol.StatusDuplicate}
		default:
			f.applied[a.Key] = true
			res[i] = protocol.Result{Key: a.Key, Status: protocol.StatusApplied}
		}
	}
	return res, nil
}

func (f *fakeUpstream) Health(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.healthy {
		return errors.New("connection refused")
	}
	return nil
}

func (f *fakeUpstream) set(err error, healthy bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.healthy = err, healthy
}

func (f *fakeUpstream) counts() (sends int, seen []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sends, append([]string(nil), f.seen...)
}

type env struct {
	t     *testing.T
	db    *outboxdb.DB
	up    *fakeUpstream
	clk   *clock.Fake
	eng   *syncer.Engine
	stop  func()
	start time.Time
}

func newEnv(t *testing.T, o syncer.Options) *env {
	t.Helper()
	start := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	db, err := outboxdb.Open(filepath.Join(t.TempDir(), "outbox.db"), outboxdb.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	up := newFake()
	o.Clock = clk
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 1 } // the full ceiling: deterministic
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Second
	}
	return &env{t: t, db: db, up: up, clk: clk, eng: syncer.New(db, up, o), start: start}
}

func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.eng.Run(ctx) }()
	e.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			e.t.Fatal("Run did not return after cancel")
		}
	}
	e.t.Cleanup(func() {
		if e.stop != nil {
			e.stop()
			e.stop = nil
		}
	})
}

func (e *env) enqueue(n int, payload string) []outbox.Action {
	e.t.Helper()
	var out []outbox.Action
	for i := 0; i < n; i++ {
		a, _, err := e.db.Enqueue(context.Background(), outbox.NewAction{Key: testsupport.NewKey(), Type: "message", Payload: json.RawMessage(payload)})
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	e.eng.Kick()
	return out
}

func (e *env) counts() outbox.Counts {
	c, err := e.db.Counts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// waitTimer waits until the engine has armed a timer due at or after at.
func (e *env) waitTimerAt(at time.Time) {
	e.t.Helper()
	testsupport.WaitFor(e.t, "engine timer at "+at.Format(time.TimeOnly), func() bool {
		n, next := e.clk.Waiters()
		return n > 0 && !next.Before(at)
	})
}

// advanceUntil moves the clock on by step each time the engine waits on a
// timer, until cond holds. Unlike waitTimerAt then Advance, it does not
// depend on which of the engine's timers was seen first: a kick that
// lands just as the clock moves makes the engine set its timer again.
func (e *env) advanceUntil(what string, step time.Duration, cond func() bool) {
	e.t.Helper()
	testsupport.WaitFor(e.t, what, func() bool {
		if cond() {
			return true
		}
		if n, _ := e.clk.Waiters(); n > 0 {
			e.clk.Advance(step)
		}
		return false
	})
}

func TestEngine(t *testing.T) {
	t.Run("drains the queue in FIFO order, batch after batch", func(t *testing.T) {
		e := newEnv(t, syncer.Options{BatchSize: 7})
		acts := e.enqueue(50, `{"text":"hi"}`)
		e.run()
		testsupport.WaitFor(t, "all synced", func() bool { return e.counts()[outbox.Synced] == 50 })
		sends, seen := e.up.counts()
		if sends != 8 { // ceil(50/7)
			t.Errorf("sends = %d, want 8", sends)
		}
		for i, a := range acts {
			if seen[i] != a.Key {
				t.Fatalf("seen[%d] = %s, want %s (FIFO)", i, seen[i], a.Key)
			}
		}
		if st := e.eng.Status(); !st.Online || st.LastSync == nil {
			t.Errorf("status = %+v, want online with a last sync", st)
		}
	})

	t.Run("a rejected action fails and does not block later ones", func(t *testing.T) {
		e := newEnv(t, syncer.Options{BatchSize: 2})
		e.enqueue(1, `{"text":"a"}`)
		bad := e.enqueue(1, `{"_reject":"too rude"}`)[0]
		e.enqueue(3, `{"text":"b"}`)
		e.run()
		testsupport.WaitFor(t, "4 synced", func() bool { return e.counts()[outbox.Synced] == 4 })
		got, _, err := e.db.Get(context.Background(), bad.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != outbox.Failed || got.LastError != "too rude" {
			t.Errorf("rejected action = %s %q, want failed %q", got.State, got.LastError, "too rude")
		}
	})

	t.Run("a transient failure backs off exponentially, capped, and keeps order", func(t *testing.T) {
		e := newEnv(t, syncer.Options{MinBackoff: time.Second, MaxBackoff: 5 * time.Second, ProbeEvery: time.Hour})
		e.up.set(&protocol.HTTPError{StatusCode: 503, Message: "down"}, false)
		acts := e.enqueue(3, `{"text":"x"}`)
		e.run()
		// Jitter is 1, so each wait is the full ceiling: 1s, 2s, 4s, 5s, 5s.
		at := e.start
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
			testsupport.WaitFor(t, fmt.Sprintf("attempt %d", i+1), func() bool { s, _ := e.up.counts(); return s == i+1 })
			at = e.clk.Now().Add(want)
			e.waitTimerAt(at)
			if _, next := e.clk.Waiters(); !next.Equal(at) {
				t.Fatalf("attempt %d: next try at %v, want %v", i+1, next.Sub(e.clk.Now()), want)
			}
			st := e.eng.Status()
			if st.Online || st.NextAttempt == nil || !st.NextAttempt.Equal(at) {
				t.Fatalf("status after failure %d = %+v, want offline, next attempt in %v", i+1, st, want)
			}
			if c := e.counts(); c[outbox.Queued] != 3 || c[outbox.Syncing] != 0 {
				t.Fatalf("counts = %v, want 3 queued", c)
			}
			e.clk.Advance(want)
		}
		e.up.set(nil, true)
		testsupport.WaitFor(t, "all synced", func() bool { return e.counts()[outbox.Synced] == 3 })
		_, seen := e.up.counts()
		for i, a := range acts {
			if seen[i] != a.Key {
				t.Fatalf("order after retries: seen[%d] = %s, want %s", i, seen[i], a.Key)
			}
		}
		a, _, _ := e.db.Get(context.Background(), acts[0].ID)
		if a.Attempts != 6 {
			t.Errorf("attempts = %d, want 6", a.Attempts)
		}
	})

	t.Run("full jitter draws below the ceiling", func(t *testing.T) {
		e := newEnv(t, syncer.Options{MinBackoff: 10 * time.Second, ProbeEvery: time.Hour, Jitter: func() float64 { return 0.25 }})
		e.up.set(errors.New("connection refused"), false)
		e.enqueue(1, `{}`)
		e.run()
		e.waitTimerAt(e.start.Add(2500 * time.Millisecond))
		if _, next := e.clk.Waiters(); !next.Equal(e.start.Add(2500 * time.Millisecond)) {
			t.Errorf("next try in %v, want 2.5s (0.25 × 10s)", next.Sub(e.start))
		}
	})

	t.Run("429 Retry-After is honoured", func(t *testing.T) {
		e := newEnv(t, syncer.Options{MinBackoff: time.Second, ProbeEvery: time.Hour})
		e.up.set(&protocol.HTTPError{StatusCode: 429, RetryAfter: 30 * time.Second}, true)
		e.enqueue(2, `{}`)
		e.run()
		e.waitTimerAt(e.start.Add(30 * time.Second))
		if st := e.eng.Status(); st.State != syncer.StateOffline || st.Problem == nil || st.Problem.Message != "Upstream asked to slow down (429 Too Many Requests)" {
			t.Errorf("status %+v, want offline saying the upstream asked to slow down", st)
		}
		e.up.set(nil, true)
		e.clk.Advance(29 * time.Second) // past our own backoff, not past Retry-After
		time.Sleep(20 * time.Millisecond)
		if s, _ := e.up.counts(); s != 1 {
			t.Fatalf("sent %d times before Retry-After elapsed, want 1", s)
		}
		e.clk.Advance(time.Second)
		testsupport.WaitFor(t, "synced after Retry-After", func() bool { return e.counts()[outbox.Synced] == 2 })
	})

	t.Run("work offline pauses sync; force sync still sends, and the pause stays", func(t *testing.T) {
		e := newEnv(t, syncer.Options{WorkOffline: true})
		e.enqueue(3, `{}`)
		e.run()
		time.Sleep(20 * time.Millisecond)
		if s, _ := e.up.counts(); s != 0 {
			t.Fatalf("sent %d batches while working offline, want 0", s)
		}
		rep, err := e.eng.SyncNow(context.Background())
		if err != nil || rep.Synced != 3 || rep.Err != nil {
			t.Fatalf("SyncNow = %+v, %v; want 3 synced", rep, err)
		}
		e.enqueue(1, `{}`)
		time.Sleep(20 * time.Millisecond)
		if c := e.counts(); c[outbox.Queued] != 1 || !e.eng.Status().WorkOffline {
			t.Fatalf("after force sync: counts %v, status %+v; want 1 queued, still working offline", c, e.eng.Status())
		}
		e.eng.SetWorkOffline(false)
		testsupport.WaitFor(t, "resumed sync", func() bool { return e.counts()[outbox.Synced] == 4 })
	})

	t.Run("force sync stops at the first transient failure and reports it", func(t *testing.T) {
		e := newEnv(t, syncer.Options{WorkOffline: true, BatchSize: 2})
		e.enqueue(5, `{}`)
		e.up.set(errors.New("connection refused"), false)
		rep, err := e.eng.SyncNow(context.Background())
		if err != nil || rep.Err == nil || rep.Batches != 1 {
			t.Fatalf("SyncNow = %+v, %v; want one batch and its error", rep, err)
		}
		if c := e.counts(); c[outbox.Queued] != 5 {
			t.Fatalf("counts = %v, want all 5 queued again", c)
		}
	})

	t.Run("syncs at once when the upstream comes back", func(t *testing.T) {
		e := newEnv(t, syncer.Options{MinBackoff: time.Hour, MaxBackoff: time.Hour, ProbeEvery: 5 * time.Second})
		e.up.set(errors.New("connection refused"), false)
		e.enqueue(2, `{}`)
		e.run()
		e.waitTimerAt(e.start.Add(5 * time.Second)) // the probe
		e.up.set(nil, true)
		e.clk.Advance(5 * time.Second) // the probe succeeds; the hour of backoff is not waited
		testsupport.WaitFor(t, "synced after reconnect", func() bool { return e.counts()[outbox.Synced] == 2 })
		if st := e.eng.Status(); !st.Online || st.OfflineSince != nil {
			t.Errorf("status = %+v, want online", st)
		}
	})

	t.Run("stops cleanly and leaks no goroutines", func(t *testing.T) {
		before := runtime.NumGoroutine()
		e := newEnv(t, syncer.Options{})
		e.enqueue(10, `{}`)
		e.run()
		testsupport.WaitFor(t, "synced", func() bool { return e.counts()[outbox.Synced] == 10 })
		e.stop()
		e.stop = nil
		e.db.Close()
		testsupport.WaitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	})
}
