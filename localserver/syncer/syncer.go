// Package syncer is the sync engine: it claims queued actions from the
// outbox in FIFO order, sends them upstream in batches, records each
// action's outcome, and backs off (exponentially, with full jitter, capped,
// honouring Retry-After) when the upstream cannot take them. It knows
// whether the upstream is reachable, pauses in work-offline mode, and runs
// a forced sync on demand.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"synctray/localserver/clock"
	"synctray/localserver/outbox"
	"synctray/upstream"
)

// Upstream is what the engine needs from the upstream client.
type Upstream interface {
	Send(ctx context.Context, actions []upstream.Action) ([]upstream.Result, error)
	Health(ctx context.Context) error
}

// Options configure an Engine. Zero values are the documented defaults.
type Options struct {
	BatchSize   int           // actions per upstream request; 0: 250
	MinBackoff  time.Duration // first backoff ceiling; 0: 1s
	MaxBackoff  time.Duration // backoff cap; 0: 5m
	ProbeEvery  time.Duration // health probe period while offline; 0: 5s
	SendTimeout time.Duration // per-batch request timeout; 0: 30s
	Clock       clock.Clock   // nil: the wall clock
	Jitter      func() float64
	// WorkOffline starts the engine paused.
	WorkOffline bool
	// OnStatus is called after each status change; it must not block.
	OnStatus func(Status)
	// OnReport is called after each drain that sent at least one batch
	// (automatic or forced); it must not block.
	OnReport func(Report)
	// Upstream names the upstream in Status (its URL).
	Upstream string
	Logger   *slog.Logger
}

// Status is what the engine knows about its connection.
type Status struct {
	Online       bool       `json:"online"`
	WorkOffline  bool       `json:"work_offline"`
	Syncing      bool       `json:"syncing"`
	LastSync     *time.Time `json:"last_sync"`
	LastError    string     `json:"last_error,omitempty"`
	OfflineSince *time.Time `json:"offline_since,omitempty"`
	NextAttempt  *time.Time `json:"next_attempt,omitempty"`
	Upstream     string     `json:"upstream"`
}

// Report sums up one drain of the queue.
type Report struct {
	Synced   int   `json:"synced"`
	Rejected int   `json:"rejected"`
	Batches  int   `json:"batches"`
	Err      error `json:"-"` // the transient failure that stopped it, if any
}

// Engine moves queued actions to the upstream. Create it with New and
// run it with Run.
type Engine struct {
	store outbox.Store
	up    Upstream
	o     Options
	log   *slog.Logger

	kick   chan struct{}
	sendMu sync.Mutex // one drain at a time: keeps FIFO order across batches

	mu           sync.Mutex
	st           Status
	failures     int
	backoffUntil time.Time // from our own exponential backoff
	notBefore    time.Time // from the upstream's Retry-After
}

// New returns an engine that is not running yet.
func New(store outbox.Store, up Upstream, o Options) *Engine {
	if o.BatchSize <= 0 {
		o.BatchSize = 250
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 5 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Engine{
		store: store, up: up, o: o, log: o.Logger,
		kick: make(chan struct{}, 1),
		// Until the first attempt says otherwise, assume the upstream is there.
		st: Status{Online: true, WorkOffline: o.WorkOffline, Upstream: o.Upstream},
	}
}

// Kick tells the engine there may be new work. It never blocks.
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Status returns the current status.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// SetWorkOffline pauses (true) or resumes (false) automatic sync. Resuming
// starts a sync at once.
func (e *Engine) SetWorkOffline(off bool) {
	e.update(func(s *Status) { s.WorkOffline = off })
	if !off {
		e.Kick()
	}
}

// Run syncs until ctx is cancelled, then returns nil once the batch in
// flight (if any) has been recorded.
func (e *Engine) Run(ctx context.Context) error {
	pending := true // work may be waiting from before start
	for {
		if ctx.Err() != nil {
			return nil
		}
		e.mu.Lock()
		paused, online := e.st.WorkOffline, e.st.Online
		wait := e.retryAtLocked().Sub(e.o.Clock.Now())
		e.mu.Unlock()

		if pending && !paused && wait <= 0 {
			rep := e.drain(ctx, 0)
			pending = rep.Err != nil // a transient failure leaves work behind
			continue
		}

		var retryC, probeC <-chan time.Time
		var timers []clock.Timer
		if pending && !paused && wait > 0 {
			t := e.o.Clock.NewTimer(wait)
			timers = append(timers, t)
			retryC = t.C()
		}
		if !paused && !online {
			t := e.o.Clock.NewTimer(e.o.ProbeEvery)
			timers = append(timers, t)
			probeC = t.C()
		}
		select {
		case <-ctx.Done():
		case <-e.kick:
			pending = true
		case <-retryC:
		case <-probeC:
			if e.probe(ctx) {
				pending = true
			}
		}
		for _, t := range timers {
			t.Stop()
		}
	}
}

// SyncNow sends everything queued at this moment, batch after batch,
// ignoring backoff and work-offline mode. It stops at the first transient
// failure and returns it in the report.
func (e *Engine) SyncNow(ctx context.Context) (Report, error) {
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	maxID, err := e.store.MaxQueuedID(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("sync now: %w", err)
	}
	if maxID == 0 {
		return Report{}, nil
	}
	return e.drainLocked(ctx, maxID), nil
}

func (e *Engine) retryAtLocked() time.Time {
	if e.notBefore.After(e.backoffUntil) {
		return e.notBefore
	}
	return e.backoffUntil
}

// probe asks the upstream whether it is there; it reports true when the
// upstream just came back, so that a sync starts at once.
func (e *Engine) probe(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.up.Health(ctx); err != nil {
		e.log.Debug("upstream probe failed", "err", err)
		return false
	}
	e.mu.Lock()
	e.failures = 0
	e.backoffUntil = time.Time{} // Retry-After still stands: the upstream asked for it
	e.mu.Unlock()
	e.update(func(s *Status) { s.Online, s.OfflineSince, s.NextAttempt = true, nil, nil })
	e.log.Info("upstream reachable again")
	return true
}

func (e *Engine) drain(ctx context.Context, maxID int64) Report {
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	return e.drainLocked(ctx, maxID)
}

// drainLocked sends batches until the queue (up to maxID, 0: all) is empty
// or a batch fails transiently.
func (e *Engine) drainLocked(ctx context.Context, maxID int64) (rep Report) {
	defer func() {
		e.update(func(s *Status) { s.Syncing = false })
		if rep.Batches > 0 && e.o.OnReport != nil {
			e.o.OnReport(rep)
		}
	}()
	for ctx.Err() == nil {
		batch, err := e.store.Claim(ctx, e.o.BatchSize, maxID)
		if err != nil {
			if ctx.Err() == nil {
				rep.Err = fmt.Errorf("claim batch: %w", err)
				e.log.Error("claim batch", "err", err)
				e.mu.Lock() // a local fault: wait a little, but the upstream is not to blame
				e.backoffUntil = e.o.Clock.Now().Add(e.o.MinBackoff)
				e.mu.Unlock()
			}
			return rep
		}
		if len(batch) == 0 {
			return rep
		}
		e.update(func(s *Status) { s.Syncing = true })
		synced, rejected, err := e.send(ctx, batch)
		rep.Batches++
		rep.Synced += synced
		rep.Rejected += rejected
		if err != nil {
			rep.Err = err
			return rep
		}
	}
	return rep
}

// send sends one claimed batch and records every action's outcome.
func (e *Engine) send(ctx context.Context, batch []outbox.Action) (synced, rejected int, err error) {
	req := make([]upstream.Action, len(batch))
	for i, a := range batch {
		req[i] = upstream.Action{Key: a.Key, Type: a.Type, Payload: a.Payload, CreatedAt: a.CreatedAt}
	}
	sendCtx, cancel := context.WithTimeout(ctx, e.o.SendTimeout)
	results, sendErr := e.up.Send(sendCtx, req)
	cancel()

	outcomes := make([]outbox.Outcome, len(batch))
	if sendErr != nil {
		retryAt := e.failed(sendErr)
		for i, a := range batch {
			outcomes[i] = outbox.Outcome{ID: a.ID, Error: sendErr.Error(), RetryAt: retryAt}
		}
	} else {
		for i, a := range batch {
			r := results[i]
			switch r.Status {
			case upstream.StatusApplied:
				outcomes[i] = outbox.Outcome{ID: a.ID, Status: outbox.Applied}
				synced++
			case upstream.StatusDuplicate:
				outcomes[i] = outbox.Outcome{ID: a.ID, Status: outbox.Duplicate}
				synced++
			case upstream.StatusRejected:
				outcomes[i] = outbox.Outcome{ID: a.ID, Status: outbox.Rejected, Error: r.Error}
				rejected++
			default:
				// An answer we don't understand: keep the action and try again later.
				outcomes[i] = outbox.Outcome{ID: a.ID, Error: fmt.Sprintf("upstream answered unknown status %q", r.Status)}
			}
		}
		e.succeeded()
	}
	// The outcome must be recorded even when we are shutting down: the
	// upstream may have applied the batch.
	recCtx, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelRec()
	if err := e.store.Complete(recCtx, outcomes); err != nil {
		e.log.Error("record batch outcome", "err", err, "actions", len(batch))
		if sendErr == nil {
			sendErr = fmt.Errorf("record batch outcome: %w", err)
		}
	}
	if sendErr != nil {
		return 0, 0, sendErr
	}
	if rejected > 0 {
		e.log.Warn("upstream rejected actions", "count", rejected)
	}
	return synced, rejected, nil
}

// failed records a transient failure and returns when to try again.
func (e *Engine) failed(err error) time.Time {
	now := e.o.Clock.Now()
	e.mu.Lock()
	e.failures++
	ceil := e.o.MinBackoff
	for i := 1; i < e.failures && ceil < e.o.MaxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, e.o.MaxBackoff)
	// Full jitter, with a small floor so that a zero draw does not spin.
	d := max(time.Duration(e.o.Jitter()*float64(ceil)), e.o.MinBackoff/10)
	e.backoffUntil = now.Add(d)

	offline := true
	var he *upstream.HTTPError
	if errors.As(err, &he) {
		if he.RetryAfter > 0 {
			e.notBefore = now.Add(he.RetryAfter)
		}
		offline = he.StatusCode >= 500 || he.StatusCode == 408
	}
	retryAt := e.retryAtLocked()
	e.mu.Unlock()

	e.log.Warn("sync failed; will retry", "err", err, "retry_in", retryAt.Sub(now).Round(time.Millisecond))
	e.update(func(s *Status) {
		s.LastError = err.Error()
		s.NextAttempt = &retryAt
		if offline && s.Online {
			s.Online, s.OfflineSince = false, &now
		}
	})
	return retryAt
}

func (e *Engine) succeeded() {
	now := e.o.Clock.Now()
	e.mu.Lock()
	e.failures = 0
	e.backoffUntil, e.notBefore = time.Time{}, time.Time{}
	e.mu.Unlock()
	e.update(func(s *Status) {
		s.Online, s.OfflineSince, s.LastError, s.NextAttempt = true, nil, "", nil
		s.LastSync = &now
	})
}

// update changes the status and tells the listener if it changed.
func (e *Engine) update(f func(*Status)) {
	e.mu.Lock()
	before := e.st
	f(&e.st)
	after := e.st
	e.mu.Unlock()
	if e.o.OnStatus != nil && !sameStatus(before, after) {
		e.o.OnStatus(after)
	}
}

func sameStatus(a, b Status) bool {
	eq := func(x, y *time.Time) bool { return x == y || x != nil && y != nil && x.Equal(*y) }
	return a.Online == b.Online && a.WorkOffline == b.WorkOffline && a.Syncing == b.Syncing &&
		a.LastError == b.LastError && a.Upstream == b.Upstream &&
		eq(a.LastSync, b.LastSync) && eq(a.OfflineSince, b.OfflineSince) && eq(a.NextAttempt, b.NextAttempt)
}
