// Package syncer is the sync engine: it claims queued actions from the
// outbox in FIFO order, sends them upstream in batches, records each
// action's outcome, and decides what every failure means by the one
// failure policy (internal/failure, design §10): back off (exponentially,
// with full jitter, capped, honouring Retry-After up to the cap) while the
// upstream is unreachable; split a batch the upstream refuses as a whole
// until the one poison action is alone; stop automatic sync ("blocked")
// when the upstream refuses our token or does not speak the protocol, or
// the local store cannot work. It owns the host's status (design §11).
package syncer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"synctray/internal/failure"
	"synctray/localserver/clock"
	"synctray/localserver/outbox"
	"synctray/upstream/protocol"
)

// Upstream is what the engine needs from the upstream client. Send's
// errors are sorted by failure.Classify.
type Upstream interface {
	Send(ctx context.Context, actions []protocol.Action) ([]protocol.Result, error)
	Health(ctx context.Context) error
}

// Forwarder is what the engine needs from an HTTP upstream (HTTP mode,
// design §12): it sends one recorded write and returns the upstream's
// answer as the JSON kept on the action (nil when there is none); a
// non-2xx answer is also a *failure.HTTPError.
type Forwarder interface {
	Deliver(ctx context.Context, a outbox.Action) (answer json.RawMessage, err error)
	Health(ctx context.Context) error
}

// Options configure an Engine. Zero values are the documented defaults.
type Options struct {
	BatchSize int // actions per upstream request; 0: 250; at most protocol.MaxBatch
	// MaxRequestBytes is the largest request body sent upstream: a batch
	// whose encoded size is larger goes out in several requests; 0: the
	// protocol's protocol.MaxBodyBytes.
	MaxRequestBytes int
	MinBackoff      time.Duration // first backoff ceiling; 0: 1s
	MaxBackoff      time.Duration // backoff cap, also for Retry-After; 0: 5m
	ProbeEvery      time.Duration // health probe period while offline; 0: 5s
	SendTimeout     time.Duration // per-request timeout; 0: 30s
	// SyncNowTimeout bounds a forced sync: it returns with what it did so
	// far; 0: 60s.
	SyncNowTimeout time.Duration
	Clock          clock.Clock // nil: the wall clock
	Jitter         func() float64
	// WorkOffline starts the engine paused.
	WorkOffline bool
	// OnStatus is called after each status change; it must not block.
	OnStatus func(Status)
	// OnReport is called after each drain that sent at least one batch
	// (automatic or forced); it must not block.
	OnReport func(Report)
	// Upstream names the upstream in Status (its URL).
	Upstream string
	// StoreName names the outbox (its path) in storage problems.
	StoreName string
	// OnAnswer, when set, is called in HTTP mode as soon as the upstream
	// has answered a write for good (synced or failed), before the
	// outcome is recorded: a page waiting for that answer can have it at
	// once. The action carries its new state, answer and error. It must not
	// block. (If the host dies before recording, the write is sent again
	// with its key: the upstream answers it again.)
	OnAnswer func(outbox.Action)
	// Blocked starts the engine blocked with this problem (the upstream
	// refused us before a restart, with the same configuration): no
	// automatic sync until Sync now.
	Blocked *Problem
	// OnBlocked is told when the upstream blocks the engine (the problem)
	// and when Sync now lifts it (nil), so that the host can keep it
	// across a restart.
	OnBlocked func(*Problem)
	// Concurrency is how many writes are in flight at once in HTTP mode;
	// 0 or 1: one, which keeps their order.
	Concurrency int
	Logger      *slog.Logger
	// Observe, when set, is told about each upstream request the engine
	// made and each claimed batch it sent and recorded (for metrics); it
	// may be called from several goroutines at once and must not block.
	// nil: nothing is observed.
	Observe func(Observation)
}

// What an Observation measures.
const (
	ObserveRequest = "request" // one upstream request, with its outcome
	ObserveBatch   = "batch"   // one claimed batch: sent, and its outcomes recorded
)

// Observation is one measurement of the engine's work, for Options.Observe.
// Requests cut short because the engine stops (shutdown, a forced sync
// out of time) are not observed: they say nothing about the upstream.
type Observation struct {
	What string // ObserveRequest or ObserveBatch
	// Outcome is how the failure policy sorted a request's answer.
	Outcome failure.Kind
	// Code is a request's HTTP status; 0 when there was none (network
	// error, timeout). A batch protocol v1 took counts as 200, the
	// protocol's answer (its client accepts no other success).
	Code     int
	Actions  int           // actions the request or batch carried
	Duration time.Duration // wall-clock time it took
}

// Validate reports options the engine cannot work with.
func (o Options) Validate() error {
	if o.BatchSize < 0 || o.BatchSize > protocol.MaxBatch {
		return fmt.Errorf("batch size %d: want 1 to %d actions per request (the protocol's limit)", o.BatchSize, protocol.MaxBatch)
	}
	return nil
}

// The host's states (design §11).
const (
	StateOnline         = "online"
	StateOffline        = "offline"         // the upstream is not reachable
	StateWorkingOffline = "working_offline" // the user paused automatic sync
	StateBlocked        = "blocked"         // we may not or cannot go on until people act
)

// Problem says why the host is not online: a code of failure.Code*, one
// line for people, and since when.
type Problem struct {
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
}

// Status is the host's one status value: the tray, the inspector, the CLI,
// the web app and notifications all render it.
type Status struct {
	State        string     `json:"state"`
	Problem      *Problem   `json:"problem,omitempty"`
	Online       bool       `json:"online"` // State is online
	WorkOffline  bool       `json:"work_offline"`
	Syncing      bool       `json:"syncing"`
	LastSync     *time.Time `json:"last_sync"`
	LastError    string     `json:"last_error,omitempty"` // one line, from the last failed attempt
	OfflineSince *time.Time `json:"offline_since,omitempty"`
	NextAttempt  *time.Time `json:"next_attempt,omitempty"`
	Upstream     string     `json:"upstream"`
}

// Report sums up one drain of the queue.
type Report struct {
	Synced   int    `json:"synced"`
	Rejected int    `json:"rejected"`
	Batches  int    `json:"batches"` // requests sent
	Error    string `json:"error,omitempty"`
	// TimedOut: a forced sync reached its time bound; the rest stays queued.
	TimedOut bool  `json:"timed_out,omitempty"`
	Err      error `json:"-"` // the failure that stopped it, if any
}

// MaxBusyAttempts is how often an action the upstream says is "in
// progress" (HTTP mode 409) is tried before it fails.
const MaxBusyAttempts = 10

// Engine moves queued actions to the upstream. Create it with New and
// run it with Run.
type Engine struct {
	store   outbox.Store
	up      Upstream  // protocol v1; nil in HTTP mode
	fw      Forwarder // HTTP mode; nil for protocol v1
	o       Options
	log     *slog.Logger
	backoff failure.Backoff

	kick chan struct{}
	send chan struct{} // one drain at a time (keeps FIFO order); a semaphore so waiting can be cancelled

	mu           sync.Mutex
	st           Status
	unreachable  *Problem // the upstream is not reachable (last attempt or probe)
	blocked      *Problem // the upstream refuses us: unauthorized, protocol
	storage      *Problem // the local store cannot work: disk_full, storage
	failures     int
	storeFails   int
	backoffUntil time.Time        // our own backoff; a successful probe lifts it
	notBefore    time.Time        // the upstream's Retry-After (capped); only a success lifts it
	answered     bool             // the last failure was an HTTP answer (5xx, 429): the upstream is there, and no probe shortcuts the backoff
	pending      []outbox.Outcome // outcomes the store could not record yet
	running      bool             // Run is running
	reserved     int              // slots given by Reserve, not adopted or released yet

	adopted chan outbox.Action // new writes claimed at enqueue (Reserve, Adopt), for the drain to send
	wake    chan struct{}      // an adopted write waits, or the recorder caught up
	rec     recorder           // HTTP mode's outcomes, committed in groups
	flushMu sync.Mutex         // one flushPending at a time
	// mayClaim: the queue may hold writes to claim (HTTP mode): set by a
	// kick, a requeue and at start; cleared when a drain found none.
	mayClaim atomic.Bool
}

// New returns an engine that is not running yet. Options must be valid.
func New(store outbox.Store, up Upstream, o Options) *Engine {
	if o.BatchSize <= 0 {
		o.BatchSize = 250
	}
	o.BatchSize = min(o.BatchSize, protocol.MaxBatch)
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = protocol.MaxBodyBytes
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
	if o.SyncNowTimeout <= 0 {
		o.SyncNowTimeout = 60 * time.Second
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
	e := &Engine{
		store: store, up: up, o: o, log: o.Logger,
		backoff: failure.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff, Jitter: o.Jitter},
		kick:    make(chan struct{}, 1),
		send:    make(chan struct{}, 1),
		st:      Status{WorkOffline: o.WorkOffline, Upstream: o.Upstream},
		blocked: copyProblem(o.Blocked),
	}
	e.deriveLocked()
	return e
}

// NewHTTP returns an engine in HTTP mode: it replays each queued action
// (a recorded write) through fw, Concurrency at a time, and sorts every
// answer by the failure policy in HTTP mode.
func NewHTTP(store outbox.Store, fw Forwarder, o Options) *Engine {
	// At most BatchSize writes are claimed and not answered. Big claims
	// are cheaper (16 in flight at 5 ms: claims of up to 128 replayed
	// 2,408 - 2,475 writes/s, 256: 2,469 - 2,510, 1,000: 2,513 - 2,588),
	// but a claimed write is syncing: it cannot be cancelled until sent.
	o.Concurrency = max(o.Concurrency, 1)
	o.BatchSize = min(max(64*o.Concurrency, 64), 1000)
	e := New(store, nil, o)
	e.fw = fw
	e.adopted = make(chan outbox.Action, o.BatchSize)
	e.mayClaim.Store(true) // work may be waiting from before start
	e.wake = make(chan struct{}, 1)
	e.rec.cond.L = &e.rec.mu
	e.rec.kick = make(chan struct{}, 1)
	return e
}

// Kick tells the engine there may be new work. It never blocks.
func (e *Engine) Kick() {
	e.mayClaim.Store(true)
	signal(e.kick)
}

// signal wakes whoever waits on ch (a channel of one) without blocking;
// signals that come before the wake merge into one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// pausedLocked: the user paused automatic sync, or the upstream blocked it.
func (e *Engine) pausedLocked() bool { return e.st.WorkOffline || e.blocked != nil }

// Status returns the current status.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// SetWorkOffline pauses (true) or resumes (false) automatic sync. Resuming
// starts a sync at once.
func (e *Engine) SetWorkOffline(off bool) {
	e.update(func() { e.st.WorkOffline = off })
	if !off {
		e.Kick()
	}
}

// ReportStore tells the engine how a write to the outbox went, so that
// the status says when the disk is full or the store is damaged (err
// wraps outbox.ErrDiskFull or outbox.ErrCorrupt). A write that succeeds
// (err nil) ends a full disk; it does not end damage: a damaged file
// does not mend itself, and a write that missed the damaged pages proves
// nothing, so that problem stays until the host is restarted (and the
// outbox checked). Other errors change nothing.
func (e *Engine) ReportStore(err error) {
	if err == nil {
		e.mu.Lock()
		had := e.storage != nil && e.storage.Code == failure.CodeDiskFull
		e.mu.Unlock()
		if had {
			e.update(func() { e.storage, e.storeFails = nil, 0 })
			e.log.Info("outbox writable again")
			e.Kick()
		}
		return
	}
	var p *Problem
	now := e.o.Clock.Now()
	switch {
	case errors.Is(err, outbox.ErrDiskFull):
		p = &Problem{Code: failure.CodeDiskFull, Message: fmt.Sprintf("The disk holding %s is full: free some space", e.storeName()), Since: now}
	case errors.Is(err, outbox.ErrCorrupt):
		p = &Problem{Code: failure.CodeStorage, Message: fmt.Sprintf("The outbox %s is damaged: restore it from a backup, or start over with --reset-outbox", e.storeName()), Since: now}
	default:
		return
	}
	fresh := false
	e.update(func() {
		if e.storage != nil && (e.storage.Code == p.Code || e.storage.Code == failure.CodeStorage) {
			return // keep its Since; damage outlasts a full disk
		}
		e.storage, fresh = p, true
	})
	if fresh {
		e.Kick() // so Run starts checking for the store to recover
	}
}

// summary is the one line for what stopped a drain: a store that cannot
// work is told in its problem's words, which name the file and what to do.
func (e *Engine) summary(err error) string {
	if errors.Is(err, outbox.ErrDiskFull) || errors.Is(err, outbox.ErrCorrupt) {
		e.mu.Lock()
		p := e.storage
		e.mu.Unlock()
		if p != nil {
			return p.Message
		}
	}
	return failure.Summary(err)
}

func (e *Engine) storeName() string {
	if e.o.StoreName != "" {
		return e.o.StoreName
	}
	return "the outbox"
}

// writableChecker is a store that can tell whether it can write again
// (outboxdb.DB does).
type writableChecker interface {
	CheckWritable(ctx context.Context) error
}

// checkStore asks the store, while it has a problem, whether it can write
// again; the problem ends when it can.
func (e *Engine) checkStore(ctx context.Context) {
	wc, ok := e.store.(writableChecker)
	if !ok {
		return
	}
	err := wc.CheckWritable(ctx)
	if err == nil {
		e.ReportStore(nil)
		return
	}
	e.ReportStore(err)
}

// Run syncs until ctx is cancelled, then returns nil once the batch in
// flight (if any) has been recorded.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
		e.returnAdopted(context.WithoutCancel(ctx))
		if e.fw != nil {
			e.waitRecorded() // Run returns once what it sent is recorded
		}
	}()
	pending := true // work may be waiting from before start
	for {
		if ctx.Err() != nil {
			return nil
		}
		e.mu.Lock()
		paused := e.pausedLocked()
		offline := e.unreachable != nil && !e.answered
		storeProblem := e.storage != nil
		wait := e.retryAtLocked().Sub(e.o.Clock.Now())
		e.mu.Unlock()
		if len(e.adopted) > 0 {
			pending = true // adopted as the last drain ended: the next sends it
		}

		if pending && !paused && wait <= 0 {
			rep := e.drain(ctx)
			pending = rep.Err != nil // a failure leaves work behind
			continue
		}
		if paused || wait > 0 {
			e.returnAdopted(ctx) // not sending now: writes claimed at enqueue wait in the queue
		}

		var retryC, probeC, storeC <-chan time.Time
		var timers []clock.Timer
		if pending && !paused && wait > 0 {
			t := e.o.Clock.NewTimer(wait)
			timers = append(timers, t)
			retryC = t.C()
		}
		if !paused && offline {
			t := e.o.Clock.NewTimer(e.o.ProbeEvery)
			timers = append(timers, t)
			probeC = t.C()
		}
		if storeProblem { // also while paused: the status must say when the disk has room again
			t := e.o.Clock.NewTimer(e.o.ProbeEvery)
			timers = append(timers, t)
			storeC = t.C()
		}
		select {
		case <-ctx.Done():
		case <-e.kick:
			pending = true
		case <-e.wake: // nil for protocol v1
			pending = true
		case <-retryC:
		case <-probeC:
			if e.probe(ctx) {
				pending = true
			}
		case <-storeC:
			e.checkStore(ctx)
		}
		for _, t := range timers {
			t.Stop()
		}
	}
}

// SyncNow sends everything queued at this moment, batch after batch,
// ignoring backoff, work-offline mode and a blocked state (it is the
// user's "try once more"). It stops at the first failure that is not
// about one action, and returns within SyncNowTimeout with what it did
// so far.
func (e *Engine) SyncNow(ctx context.Context) (Report, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.SyncNowTimeout)
	defer cancel()
	select {
	case e.send <- struct{}{}:
	case <-ctx.Done():
		return Report{TimedOut: true, Error: "A sync already in progress did not finish in time", Err: ctx.Err()}, nil
	}
	defer func() { <-e.send }()
	wasBlocked := false
	e.update(func() {
		wasBlocked = e.blocked != nil
		e.blocked = nil
		e.failures, e.backoffUntil, e.notBefore = 0, time.Time{}, time.Time{}
	})
	if wasBlocked && e.o.OnBlocked != nil {
		e.o.OnBlocked(nil)
	}
	maxID, err := e.store.MaxQueuedID(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("sync now: %w", err)
	}
	e.mu.Lock()
	npending := len(e.pending)
	e.mu.Unlock()
	if maxID == 0 && npending == 0 {
		return Report{}, nil
	}
	rep := e.drainLocked(ctx, maxID)
	if ctx.Err() != nil && rep.Err != nil {
		rep.TimedOut = true
	}
	return rep, nil
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
	var err error
	if e.fw != nil {
		err = e.fw.Health(ctx)
	} else {
		err = e.up.Health(ctx)
	}
	if err != nil {
		e.log.Debug("upstream probe failed", "err", err)
		return false
	}
	e.update(func() {
		e.unreachable = nil
		e.failures, e.backoffUntil = 0, time.Time{} // Retry-After still stands: the upstream asked for it
		if e.notBefore.IsZero() {
			e.st.NextAttempt = nil
		}
	})
	e.log.Info("upstream reachable again")
	return true
}

func (e *Engine) drain(ctx context.Context) Report {
	select {
	case e.send <- struct{}{}:
	case <-ctx.Done():
		return Report{Err: ctx.Err()}
	}
	defer func() { <-e.send }()
	return e.drainLocked(ctx, 0)
}

// drainLocked sends batches until the queue (up to maxID, 0: all) is
// empty, ctx is done, or a failure stops it.
func (e *Engine) drainLocked(ctx context.Context, maxID int64) (rep Report) {
	defer func() {
		e.update(func() { e.st.Syncing = false })
		if rep.Err != nil {
			rep.Error = e.summary(rep.Err)
		}
		if rep.Batches > 0 && e.o.OnReport != nil {
			e.o.OnReport(rep)
		}
	}()
	if e.fw != nil {
		e.drainHTTP(ctx, maxID, &rep)
		return rep
	}
	for {
		// Outcomes not recorded yet come first: those actions are still
		// "syncing" in the store.
		if err := e.flushPending(ctx); err != nil {
			rep.Err = err
			return rep
		}
		if ctx.Err() != nil {
			rep.Err = ctx.Err()
			return rep
		}
		batch, err := e.store.Claim(ctx, e.o.BatchSize, maxID)
		if err != nil {
			if ctx.Err() == nil {
				rep.Err = fmt.Errorf("claim batch: %w", err)
				e.storeFailed(err)
			} else {
				rep.Err = ctx.Err()
			}
			return rep
		}
		if len(batch) == 0 {
			return rep
		}
		e.ReportStore(nil) // the claim wrote rows: the store works
		e.update(func() { e.st.Syncing = true })
		start := time.Now()
		outcomes, stop := e.sendBatch(ctx, batch, &rep)
		e.record(ctx, outcomes)
		e.observe(Observation{What: ObserveBatch, Actions: len(batch), Duration: time.Since(start)})
		if stop != nil {
			rep.Err = stop
			return rep
		}
	}
}

// sendBatch sends one claimed batch, in requests that fit
// MaxRequestBytes, and returns every action's outcome. stop is the
// failure that stopped it; the actions not sent go back to the queue.
func (e *Engine) sendBatch(ctx context.Context, batch []outbox.Action, rep *Report) (outcomes []outbox.Outcome, stop error) {
	outcomes = make([]outbox.Outcome, 0, len(batch))
	chunks := splitBySize(batch, e.o.MaxRequestBytes)
	for i, chunk := range chunks {
		out, err := e.sendChunk(ctx, chunk, rep)
		outcomes = append(outcomes, out...)
		if err != nil {
			for _, rest := range chunks[i+1:] {
				outcomes = append(outcomes, e.requeue(rest, err, nil)...)
			}
			return outcomes, err
		}
	}
	return outcomes, nil
}

// sendChunk sends one request and sorts its outcome by the failure
// policy. A batch refused as a whole is halved until the offender is
// alone; only that one fails.
func (e *Engine) sendChunk(ctx context.Context, chunk []outbox.Action, rep *Report) ([]outbox.Outcome, error) {
	req := make([]protocol.Action, len(chunk))
	for i, a := range chunk {
		req[i] = protocol.Action{Key: a.Key, Type: a.Type, Payload: a.Payload, CreatedAt: a.CreatedAt}
	}
	sendCtx, cancel := context.WithTimeout(ctx, e.o.SendTimeout)
	start := time.Now()
	results, err := e.up.Send(sendCtx, req)
	took := time.Since(start)
	cancel()
	rep.Batches++
	if err != nil && ctx.Err() != nil {
		// Shutting down or out of time: not the upstream's fault.
		return e.requeue(chunk, ctx.Err(), nil), ctx.Err()
	}

	kind := failure.Classify(err)
	code := statusOf(err)
	if err == nil {
		code = 200 // protocol v1 answers a batch it took with 200
	}
	e.observe(Observation{What: ObserveRequest, Outcome: kind, Code: code, Actions: len(chunk), Duration: took})
	switch kind {
	case failure.Delivered:
		e.reachable(true)
		out := make([]outbox.Outcome, len(chunk))
		for i, a := range chunk {
			switch r := results[i]; r.Status {
			case protocol.StatusApplied:
				out[i] = outbox.Outcome{ID: a.ID, Status: outbox.Applied}
				rep.Synced++
			case protocol.StatusDuplicate:
				out[i] = outbox.Outcome{ID: a.ID, Status: outbox.Duplicate}
				rep.Synced++
			default: // rejected; the client refuses any other status
				out[i] = outbox.Outcome{ID: a.ID, Status: outbox.Rejected, Error: failure.Line(r.Error)}
				rep.Rejected++
			}
		}
		return out, nil

	case failure.Poison, failure.Refused, failure.Redirect:
		// A refusal that names no action: halve the batch until the
		// offender is alone; only it fails.
		if len(chunk) > 1 {
			mid := len(chunk) / 2
			e.log.Info("upstream refused a batch as a whole; splitting it", "actions", len(chunk), "err", failure.Summary(err))
			first, stop := e.sendChunk(ctx, chunk[:mid], rep)
			if stop != nil {
				return append(first, e.requeue(chunk[mid:], stop, nil)...), stop
			}
			second, stop := e.sendChunk(ctx, chunk[mid:], rep)
			return append(first, second...), stop
		}
		e.reachable(false)
		rep.Rejected++
		return []outbox.Outcome{e.refused(chunk[0], err, nil)}, nil

	case failure.Unauthorized, failure.Protocol:
		e.block(kind, err)
		return e.requeue(chunk, err, nil), err

	default: // Transient, Busy
		retryAt := e.failed(err, kind == failure.Transient)
		out := e.requeue(chunk, err, &retryAt)
		if kind == failure.Busy {
			for i, a := range chunk {
				if a.Attempts >= MaxBusyAttempts {
					out[i] = e.gaveUp(a, err, nil)
					rep.Rejected++
				}
			}
		}
		return out, err
	}
}

// sendWave sends the writes of one wave at once.
func (e *Engine) sendWave(ctx context.Context, batch []outbox.Action, rep *Report) ([]outbox.Outcome, error) {
	answers := make([]json.RawMessage, len(batch))
	errs := make([]error, len(batch))
	took := make([]time.Duration, len(batch))
	send := func(i int) {
		sendCtx, cancel := context.WithTimeout(ctx, e.o.SendTimeout)
		start := time.Now()
		answers[i], errs[i] = e.fw.Deliver(sendCtx, batch[i])
		took[i] = time.Since(start)
		cancel()
	}
	if len(batch) == 1 {
		send(0)
	} else {
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() { send(i) })
		}
		wg.Wait()
	}
	rep.Batches += len(batch)
	out := make([]outbox.Outcome, len(batch))
	var stop error
	for i, a := range batch {
		err := errs[i]
		if err != nil && ctx.Err() != nil {
			out[i] = e.requeue(batch[i:i+1], ctx.Err(), nil)[0]
			stop = ctx.Err()
			continue
		}
		kind := failure.Classify(err)
		code := statusOf(err)
		if code == 0 {
			code = answerStatus(answers[i])
		}
		e.observe(Observation{What: ObserveRequest, Outcome: kind, Code: code, Actions: 1, Duration: took[i]})
		switch kind {
		case failure.Delivered:
			e.reachable(true)
			out[i] = outbox.Outcome{ID: a.ID, Status: outbox.Applied, Response: answers[i]}
			rep.Synced++
			e.tellAnswer(a, outbox.Synced, answers[i], "")
		case failure.Refused, failure.Redirect, failure.Poison:
			e.reachable(false)
			out[i] = e.refused(a, err, answers[i])
			rep.Rejected++
			e.tellAnswer(a, outbox.Failed, answers[i], out[i].Error)
		case failure.Unauthorized, failure.Protocol:
			e.block(kind, err)
			out[i] = e.requeue(batch[i:i+1], err, nil)[0]
			out[i].Response = answers[i]
			stop = cmp.Or(stop, err)
		default: // Transient, Busy
			if kind == failure.Busy && a.Attempts >= MaxBusyAttempts {
				out[i] = e.gaveUp(a, err, answers[i])
				rep.Rejected++
				continue
			}
			retryAt := e.failed(err, kind == failure.Transient)
			out[i] = e.requeue(batch[i:i+1], err, &retryAt)[0]
			out[i].Response = answers[i]
			stop = cmp.Or(stop, err)
		}
	}
	return out, stop
}

func (e *Engine) observe(o Observation) {
	if e.o.Observe != nil {
		e.o.Observe(o)
	}
}

// statusOf is the HTTP status an upstream answered with, as its error
// says; 0: none (nil, a network error, a timeout).
func statusOf(err error) int {
	var he *failure.HTTPError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	var pe *failure.ProtocolError
	if errors.As(err, &pe) {
		return pe.StatusCode
	}
	return 0
}

// answerStatus is the status kept in an HTTP upstream's answer (the
// JSON of httpup.Answer); 0: none.
func answerStatus(answer json.RawMessage) int {
	if len(answer) == 0 {
		return 0
	}
	var a struct {
		Status int `json:"status"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return 0
	}
	return a.Status
}

// tellAnswer tells OnAnswer that a's upstream answered for good.
func (e *Engine) tellAnswer(a outbox.Action, st outbox.State, answer json.RawMessage, errText string) {
	if e.o.OnAnswer == nil {
		return
	}
	a.State, a.Response, a.LastError = st, answer, errText
	e.o.OnAnswer(a)
}

// refused is the outcome "failed for good" of an action the upstream
// refused, with its one-line reason and, on its history, the full answer.
func (e *Engine) refused(a outbox.Action, err error, answer json.RawMessage) outbox.Outcome {
	e.log.Warn("upstream refused an action", "id", a.ID, "key", a.Key, "err", failure.Summary(err))
	return outbox.Outcome{ID: a.ID, Status: outbox.Rejected, Error: failure.Summary(err), Detail: failure.Detail(err), Response: answer}
}

// gaveUp is the outcome "failed" of an action the upstream kept saying
// was in progress (409) for MaxBusyAttempts attempts.
func (e *Engine) gaveUp(a outbox.Action, err error, answer json.RawMessage) outbox.Outcome {
	e.log.Warn("upstream kept saying the action is in progress; gave up", "id", a.ID, "key", a.Key, "attempts", a.Attempts, "err", failure.Summary(err))
	return outbox.Outcome{ID: a.ID, Status: outbox.Rejected, Detail: failure.Detail(err), Response: answer,
		Error: fmt.Sprintf("%s; gave up after %d attempts", failure.Summary(err), a.Attempts)}
}

// requeue is the outcome "back to the queue" for each action, with the
// one-line reason and, on its history, the answer as a refused action
// keeps it (its first failure.DetailBytes).
func (e *Engine) requeue(chunk []outbox.Action, err error, retryAt *time.Time) []outbox.Outcome {
	summary, detail := failure.Summary(err), failure.Detail(err)
	out := make([]outbox.Outcome, len(chunk))
	for i, a := range chunk {
		out[i] = outbox.Outcome{ID: a.ID, Error: summary, Detail: detail}
		if retryAt != nil {
			out[i].RetryAt = *retryAt
		}
	}
	return out
}

// record writes the outcomes; the ones it cannot write are kept and
// written before the next claim (the upstream may have applied them).
func (e *Engine) record(ctx context.Context, outcomes []outbox.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	e.mu.Lock()
	e.pending = append(e.pending, outcomes...)
	e.mu.Unlock()
	err := e.flushPending(ctx)
	if err != nil {
		e.log.Error("record batch outcome; will retry", "err", err, "actions", len(outcomes))
	}
	return err
}

// flushPending writes the outcomes kept from earlier; it returns the
// store's error when it cannot.
func (e *Engine) flushPending(ctx context.Context) error {
	e.flushMu.Lock() // the recorder and a drain's start may both flush: never the same outcomes twice
	defer e.flushMu.Unlock()
	e.mu.Lock()
	pending := e.pending
	e.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	// Recorded even when we are shutting down: the upstream may have
	// applied the batch.
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.store.Complete(recCtx, pending); err != nil {
		e.storeFailed(err)
		return fmt.Errorf("record batch outcome: %w", err)
	}
	e.mu.Lock()
	e.pending = e.pending[len(pending):]
	e.mu.Unlock()
	e.ReportStore(nil)
	return nil
}

// storeFailed notes a failed outbox write and backs off before the next.
func (e *Engine) storeFailed(err error) {
	e.ReportStore(err)
	now := e.o.Clock.Now()
	e.mu.Lock()
	e.storeFails++
	e.backoffUntil = now.Add(e.backoff.Delay(e.storeFails, 0))
	e.mu.Unlock()
	e.log.Error("outbox write failed", "err", err)
}

// failed records a failure worth retrying and returns when to try
// again. offline says whether it means the upstream is unreachable.
func (e *Engine) failed(err error, offline bool) time.Time {
	now := e.o.Clock.Now()
	var retryAfter time.Duration
	var he *protocol.HTTPError
	if errors.As(err, &he) {
		retryAfter = he.RetryAfter
	}
	summary := failure.Summary(err)
	var retryAt time.Time
	e.update(func() {
		e.answered = he != nil
		e.failures++
		e.backoffUntil = now.Add(e.backoff.Delay(e.failures, 0))
		if retryAfter > 0 {
			e.notBefore = now.Add(min(retryAfter, e.o.MaxBackoff))
		}
		retryAt = e.retryAtLocked()
		e.st.LastError = summary
		e.st.NextAttempt = &retryAt
		if offline {
			if e.unreachable == nil {
				e.unreachable = &Problem{Code: failure.CodeUnreachable, Since: now}
			}
			e.unreachable.Message = summary
		}
	})
	e.log.Warn("sync failed; will retry", "err", summary, "retry_in", retryAt.Sub(now).Round(time.Millisecond))
	return retryAt
}

// block stops automatic sync: the upstream refuses us.
func (e *Engine) block(kind failure.Kind, err error) {
	code := failure.CodeProtocol
	if kind == failure.Unauthorized {
		code = failure.CodeUnauthorized
	}
	summary := failure.Summary(err)
	now := e.o.Clock.Now()
	e.update(func() {
		e.unreachable = nil
		e.failures, e.backoffUntil, e.notBefore = 0, time.Time{}, time.Time{}
		e.st.LastError, e.st.NextAttempt = summary, nil
		if e.blocked == nil || e.blocked.Code != code {
			e.blocked = &Problem{Code: code, Since: now}
		}
		e.blocked.Message = summary
	})
	// One line: the full answer is kept on the actions' history.
	e.log.Error("sync blocked until Sync now or a new configuration", "code", code, "err", summary)
	if e.o.OnBlocked != nil {
		e.mu.Lock()
		p := copyProblem(e.blocked)
		e.mu.Unlock()
		e.o.OnBlocked(p)
	}
}

// reachable notes that the upstream answered; delivered also resets the
// backoff and counts as a sync.
func (e *Engine) reachable(delivered bool) {
	now := e.o.Clock.Now()
	e.update(func() {
		e.unreachable = nil
		if delivered {
			e.failures, e.backoffUntil, e.notBefore = 0, time.Time{}, time.Time{}
			e.st.LastError, e.st.NextAttempt = "", nil
			e.st.LastSync = &now
		}
	})
}

// update changes the engine's state under its lock, derives the status
// from it and tells the listener if the status changed.
func (e *Engine) update(f func()) {
	e.mu.Lock()
	before := e.st
	f()
	e.deriveLocked()
	after := e.st
	e.mu.Unlock()
	if e.o.OnStatus != nil && !sameStatus(before, after) {
		e.o.OnStatus(after)
	}
}

// deriveLocked computes State, Problem, Online and OfflineSince: a
// storage problem first, then a refusing upstream, then the user's
// pause, then reachability.
func (e *Engine) deriveLocked() {
	s := &e.st
	s.Problem, s.OfflineSince = nil, nil
	switch {
	case e.storage != nil:
		s.State, s.Problem = StateBlocked, copyProblem(e.storage)
	case e.blocked != nil:
		s.State, s.Problem = StateBlocked, copyProblem(e.blocked)
	case s.WorkOffline:
		s.State = StateWorkingOffline
	case e.unreachable != nil:
		s.State, s.Problem = StateOffline, copyProblem(e.unreachable)
	default:
		s.State = StateOnline
	}
	s.Online = s.State == StateOnline
	if e.unreachable != nil {
		since := e.unreachable.Since
		s.OfflineSince = &since
	}
}

func copyProblem(p *Problem) *Problem {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func sameStatus(a, b Status) bool {
	eq := func(x, y *time.Time) bool { return x == y || x != nil && y != nil && x.Equal(*y) }
	pe := func(x, y *Problem) bool { return x == y || x != nil && y != nil && *x == *y }
	return a.State == b.State && pe(a.Problem, b.Problem) && a.Online == b.Online && a.WorkOffline == b.WorkOffline &&
		a.Syncing == b.Syncing && a.LastError == b.LastError && a.Upstream == b.Upstream &&
		eq(a.LastSync, b.LastSync) && eq(a.OfflineSince, b.OfflineSince) && eq(a.NextAttempt, b.NextAttempt)
}

// splitBySize cuts a batch into runs whose encoded request fits max bytes.
// One action always fits: the host refuses at enqueue what cannot.
func splitBySize(batch []outbox.Action, max int) [][]outbox.Action {
	const envelope = 16 // {"actions":[...]}\n
	var out [][]outbox.Action
	start, size := 0, envelope
	for i, a := range batch {
		n := protocol.EncodedSize(protocol.Action{Key: a.Key, Type: a.Type, Payload: a.Payload, CreatedAt: a.CreatedAt}) + 1
		if i > start && size+n > max {
			out = append(out, batch[start:i])
			start, size = i, envelope
		}
		size += n
	}
	return append(out, batch[start:])
}
