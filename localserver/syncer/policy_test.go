package syncer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"synctray/internal/failure"
	"synctray/internal/testsupport"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
	"synctray/upstream/protocol"
)

func refusedBy(status int) *protocol.HTTPError {
	return &protocol.HTTPError{Mode: failure.V1, Protocol: protocol.ProtocolName, Base: "http://up", Method: "POST",
		Path: "/v1/actions", StatusCode: status, ContentType: "application/json", Code: "bad", Message: "payload too deep"}
}

func TestFailurePolicy(t *testing.T) {
	t.Run("401 blocks automatic sync, keeps actions queued, and Sync now tries once more", func(t *testing.T) {
		e := newEnv(t, syncer.Options{ProbeEvery: time.Second})
		e.up.set(refusedBy(401), true)
		e.enqueue(3, `{}`)
		e.run()
		testsupport.WaitFor(t, "blocked", func() bool { return e.eng.Status().State == syncer.StateBlocked && e.counts()[outbox.Syncing] == 0 })
		st := e.eng.Status()
		if st.Problem == nil || st.Problem.Code != failure.CodeUnauthorized || !strings.HasPrefix(st.Problem.Message, "Upstream refused the token") || st.Online {
			t.Fatalf("status = %+v %+v, want blocked/unauthorized", st, st.Problem)
		}
		if c := e.counts(); c[outbox.Queued] != 3 || c[outbox.Failed] != 0 {
			t.Fatalf("counts = %v, want 3 queued, none failed", c)
		}
		// No timer, no probe, no retries: an hour later still one request.
		e.clk.Advance(time.Hour)
		e.enqueue(1, `{}`) // a kick does not unblock either
		time.Sleep(30 * time.Millisecond)
		if s, _ := e.up.counts(); s != 1 {
			t.Fatalf("sent %d requests while blocked, want 1", s)
		}
		if n, _ := e.clk.Waiters(); n != 0 {
			t.Fatalf("%d timers armed while blocked, want none", n)
		}
		rep, err := e.eng.SyncNow(context.Background())
		if err != nil || rep.Err == nil || rep.Batches != 1 {
			t.Fatalf("SyncNow while still refused = %+v, %v; want one more request and its error", rep, err)
		}
		e.up.set(nil, true)
		rep, err = e.eng.SyncNow(context.Background())
		if err != nil || rep.Synced != 4 {
			t.Fatalf("SyncNow after the fix = %+v, %v; want 4 synced", rep, err)
		}
		if st := e.eng.Status(); st.State != syncer.StateOnline || st.Problem != nil {
			t.Fatalf("status after the fix = %+v, want online", st)
		}
	})

	t.Run("an upstream that does not speak the protocol blocks with code protocol", func(t *testing.T) {
		e := newEnv(t, syncer.Options{})
		e.up.set(&failure.ProtocolError{Protocol: protocol.ProtocolName, Base: "http://127.0.0.1:7737", Method: "POST",
			Path: "/v1/actions", StatusCode: 200, ContentType: "application/json", Reason: `result status "ok" is unknown`}, true)
		e.enqueue(2, `{}`)
		e.run()
		testsupport.WaitFor(t, "blocked", func() bool { return e.eng.Status().State == syncer.StateBlocked })
		p := e.eng.Status().Problem
		want := `http://127.0.0.1:7737 does not speak synctray protocol v1 (POST /v1/actions answered 200 application/json: result status "ok" is unknown)`
		if p.Code != failure.CodeProtocol || p.Message != want {
			t.Fatalf("problem = %+v, want protocol %q", p, want)
		}
		e.clk.Advance(time.Hour)
		time.Sleep(30 * time.Millisecond)
		if s, _ := e.up.counts(); s != 1 {
			t.Fatalf("sent %d requests, want 1: no loop", s)
		}
	})

	t.Run("a batch refused as a whole is split until only the poison action fails", func(t *testing.T) {
		e := newEnv(t, syncer.Options{BatchSize: 100})
		e.up.refuse = func(acts []protocol.Action) error {
			for _, a := range acts {
				var p struct{ Poison bool }
				json.Unmarshal(a.Payload, &p)
				if p.Poison {
					return refusedBy(413)
				}
			}
			return nil
		}
		acts := e.enqueue(37, `{"text":"fine"}`)
		bad := e.enqueue(1, `{"Poison":true}`)[0]
		acts = append(acts, e.enqueue(62, `{"text":"fine"}`)...)
		e.run()
		testsupport.WaitFor(t, "99 synced", func() bool { return e.counts()[outbox.Synced] == 99 })
		got, hist, _ := e.db.Get(context.Background(), bad.ID)
		if got.State != outbox.Failed || !strings.Contains(got.LastError, "payload too deep") {
			t.Fatalf("poison action = %s %q, want failed with the upstream's reason", got.State, got.LastError)
		}
		if last := hist[len(hist)-1].Detail; !strings.Contains(last, "413") || !strings.Contains(last, "application/json") {
			t.Errorf("history detail = %q, want the full answer", last)
		}
		_, seen := e.up.counts()
		for i, a := range acts { // the good ones reached the upstream in order
			if seen[i] != a.Key {
				t.Fatalf("seen[%d] = %s, want %s", i, seen[i], a.Key)
			}
		}
		if s, _ := e.up.counts(); s > 20 {
			t.Errorf("%d requests to isolate one action in 100, want about 2·log2(100)", s)
		}
		if st := e.eng.Status(); st.State != syncer.StateOnline {
			t.Errorf("state = %s, want online: a poison action is not the upstream's fault", st.State)
		}
	})

	t.Run("a huge Retry-After is honoured only up to the backoff cap", func(t *testing.T) {
		e := newEnv(t, syncer.Options{MaxBackoff: 5 * time.Minute, ProbeEvery: time.Hour})
		he := refusedBy(429)
		he.RetryAfter = 999999999 * time.Second
		e.up.set(he, false)
		e.enqueue(1, `{}`)
		e.run()
		e.waitTimerAt(e.start.Add(5 * time.Minute))
		if st := e.eng.Status(); st.NextAttempt == nil || !st.NextAttempt.Equal(e.start.Add(5*time.Minute)) {
			t.Fatalf("next attempt = %v, want in 5m (the cap)", st.NextAttempt)
		}
	})

	t.Run("batches are cut to the upstream's body limit", func(t *testing.T) {
		e := newEnv(t, syncer.Options{BatchSize: 250, MaxRequestBytes: 64 << 10})
		big := `{"text":"` + strings.Repeat("x", 20<<10) + `"}`
		e.enqueue(10, big)
		e.run()
		testsupport.WaitFor(t, "10 synced", func() bool { return e.counts()[outbox.Synced] == 10 })
		if s, _ := e.up.counts(); s < 4 {
			t.Errorf("%d requests for 10 × 20 KiB under a 64 KiB limit, want at least 4", s)
		}
	})

	t.Run("Sync now returns within its bound when the upstream hangs", func(t *testing.T) {
		hang := &hangingUpstream{fakeUpstream: newFake()}
		e := newEnv(t, syncer.Options{})
		eng := syncer.New(e.db, hang, syncer.Options{Clock: e.clk, SyncNowTimeout: 100 * time.Millisecond, SendTimeout: time.Hour})
		e.enqueue(2, `{}`)
		done := make(chan syncer.Report, 1)
		go func() { rep, _ := eng.SyncNow(context.Background()); done <- rep }()
		select {
		case rep := <-done:
			if !rep.TimedOut || rep.Err == nil {
				t.Fatalf("report = %+v, want timed out", rep)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("SyncNow did not return")
		}
		if c := e.counts(); c[outbox.Queued] != 2 {
			t.Fatalf("counts = %v, want both queued again", c)
		}
	})
}

// hangingUpstream never answers Send until the request is cancelled.
type hangingUpstream struct{ *fakeUpstream }

func (h *hangingUpstream) Send(ctx context.Context, _ []protocol.Action) ([]protocol.Result, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// fullDisk is an outbox whose Complete fails while full is set.
type fullDisk struct {
	outbox.Store
	mu   sync.Mutex
	full bool
}

func (f *fullDisk) Complete(ctx context.Context, o []outbox.Outcome) error {
	f.mu.Lock()
	full := f.full
	f.mu.Unlock()
	if full {
		return fmt.Errorf("complete batch: %w: database or disk is full", outbox.ErrDiskFull)
	}
	return f.Store.Complete(ctx, o)
}

func (f *fullDisk) set(full bool) {
	f.mu.Lock()
	f.full = full
	f.mu.Unlock()
}

func TestOutcomesTheStoreCouldNotWriteAreWrittenOnceItCan(t *testing.T) {
	e := newEnv(t, syncer.Options{})
	store := &fullDisk{Store: e.db, full: true}
	eng := syncer.New(store, e.up, syncer.Options{Clock: e.clk, Jitter: func() float64 { return 1 }, StoreName: "/data/outbox.db"})
	e.eng = eng
	e.enqueue(5, `{}`)
	e.run()
	testsupport.WaitFor(t, "disk_full", func() bool {
		p := eng.Status().Problem
		return p != nil && p.Code == failure.CodeDiskFull
	})
	if st := eng.Status(); st.State != syncer.StateBlocked || st.Problem.Message != "The disk holding /data/outbox.db is full: free some space" {
		t.Fatalf("status = %+v %+v", st, st.Problem)
	}
	store.set(false)
	e.clk.Advance(time.Minute) // the store's backoff
	testsupport.WaitFor(t, "recorded without a restart", func() bool { return e.counts()[outbox.Synced] == 5 })
	if s, _ := e.up.counts(); s != 1 {
		t.Errorf("sent %d times, want once: the outcome was kept, not the batch resent", s)
	}
	if st := eng.Status(); st.State != syncer.StateOnline {
		t.Errorf("state = %s, want online once the disk has room", st.State)
	}
}

// checkableStore is an outbox whose CheckWritable fails while full is set.
type checkableStore struct {
	outbox.Store
	mu     sync.Mutex
	full   bool
	checks int
}

func (c *checkableStore) CheckWritable(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks++
	if c.full {
		return fmt.Errorf("check: %w", outbox.ErrDiskFull)
	}
	return nil
}

func TestADiskFullProblemEndsWhenTheDiskHasRoomAgain(t *testing.T) {
	e := newEnv(t, syncer.Options{})
	store := &checkableStore{Store: e.db, full: true}
	eng := syncer.New(store, e.up, syncer.Options{Clock: e.clk, ProbeEvery: 5 * time.Second, WorkOffline: true})
	e.eng = eng
	e.run()
	eng.ReportStore(fmt.Errorf("enqueue: %w: database or disk is full", outbox.ErrDiskFull)) // as the API does
	if p := eng.Status().Problem; p == nil || p.Code != failure.CodeDiskFull {
		t.Fatalf("problem = %+v, want disk_full", p)
	}
	e.advanceUntil("a first check", 5*time.Second, func() bool { store.mu.Lock(); defer store.mu.Unlock(); return store.checks >= 1 })
	if p := eng.Status().Problem; p == nil || p.Code != failure.CodeDiskFull {
		t.Fatalf("problem after a failed check = %+v, want disk_full still", p)
	}
	store.mu.Lock()
	store.full = false
	store.mu.Unlock()
	e.advanceUntil("the problem to end", 5*time.Second, func() bool { return eng.Status().Problem == nil })
	if st := eng.Status(); st.State != syncer.StateWorkingOffline {
		t.Fatalf("state = %s, want working_offline (the user's pause stands)", st.State)
	}
}

// damagedStore is an outbox whose claims find the file damaged.
type damagedStore struct{ outbox.Store }

func (damagedStore) Claim(context.Context, int, int64) ([]outbox.Action, error) {
	return nil, fmt.Errorf("claim batch: %w: database disk image is malformed", outbox.ErrCorrupt)
}

func TestADamagedOutboxBlocksWithStorageNotTheUpstream(t *testing.T) {
	e := newEnv(t, syncer.Options{})
	eng := syncer.New(damagedStore{e.db}, e.up, syncer.Options{Clock: e.clk, StoreName: "/data/outbox.db"})
	e.eng = eng
	e.enqueue(3, `{}`)
	e.run()
	testsupport.WaitFor(t, "storage problem", func() bool { p := eng.Status().Problem; return p != nil && p.Code == failure.CodeStorage })
	st := eng.Status()
	if st.State != syncer.StateBlocked || !strings.Contains(st.Problem.Message, "/data/outbox.db is damaged") {
		t.Fatalf("status = %+v %+v, want blocked naming the file", st, st.Problem)
	}
	if strings.Contains(strings.ToLower(st.Problem.Message), "upstream") || st.LastError != "" {
		t.Fatalf("the message blames the upstream: %+v (last error %q)", st.Problem, st.LastError)
	}
	if s, _ := e.up.counts(); s != 0 {
		t.Fatalf("sent %d requests, want none", s)
	}
}

// A write that goes through does not end damage: the damaged pages may
// be ones it did not touch (the engine's CheckWritable and the API's
// successful enqueues both report such writes).
func TestADamagedOutboxStaysAProblemAfterAWriteGoesThrough(t *testing.T) {
	e := newEnv(t, syncer.Options{})
	store := &checkableStore{Store: e.db} // its check writes fine
	eng := syncer.New(store, e.up, syncer.Options{Clock: e.clk, ProbeEvery: 5 * time.Second, WorkOffline: true, StoreName: "/data/outbox.db"})
	e.eng = eng
	e.run()
	eng.ReportStore(fmt.Errorf("get action 1: %w: database disk image is malformed", outbox.ErrCorrupt)) // as the API does
	e.advanceUntil("two checks, or the problem gone", 5*time.Second, func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.checks >= 2 || eng.Status().Problem == nil
	})
	eng.ReportStore(nil) // an enqueue went through
	eng.ReportStore(fmt.Errorf("enqueue: %w: database or disk is full", outbox.ErrDiskFull))
	st := eng.Status()
	if st.State != syncer.StateBlocked || st.Problem == nil || st.Problem.Code != failure.CodeStorage ||
		!strings.Contains(st.Problem.Message, "/data/outbox.db is damaged") {
		t.Fatalf("status = %s %+v, want blocked by the damaged outbox still", st.State, st.Problem)
	}
}
