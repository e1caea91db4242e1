package syncer

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"synctray/localserver/outbox"
)

// claimed is one claim of writes in HTTP mode, for its batch observation.
type claimed struct {
	start time.Time
	n     int
	left  int // outcomes not recorded yet; only the recorder changes it
}

// job is one write for a sender, with the claim it came in.
type job struct {
	a outbox.Action
	c *claimed
}

// answered is one write's outcome, from a sender.
type answered struct {
	out  outbox.Outcome
	c    *claimed
	rep  Report // what this one write adds to the drain's report
	stop error  // the failure that stops the drain, if this write met one
}

// drainHTTP is drainLocked in HTTP mode, as a pipeline. This goroutine
// claims writes as they become due (at most BatchSize claimed and not
// answered); Concurrency senders replay them; a recorder commits their
// outcomes in groups as they come. So no request waits for a commit, and
// a write that arrives while others are in flight is claimed at once
// (its enqueue kicks the engine), not after a batch has been recorded.
//
// With one sender, writes go out in the order they were queued: a
// failure that is not about one write (unreachable, 5xx, 401) stops the
// sender before it takes the next, and every write claimed but not sent
// goes back to the queue. An automatic drain stops claiming when the
// user pauses sync; a forced one (maxID > 0) takes only what was queued
// when it started.
func (e *Engine) drainHTTP(ctx context.Context, maxID int64, rep *Report) {
	// Outcomes not recorded yet come first: those writes are still
	// "syncing" in the store.
	if err := e.flushPending(ctx); err != nil {
		rep.Err = err
		return
	}
	limit := e.o.BatchSize
	jobs := make(chan job, limit) // never more than limit claimed or adopted and not answered: sends to it never block
	answers := make(chan answered, limit)
	var (
		stopMu  sync.Mutex
		stopErr error // set by the sender that met it, before it takes another write
	)
	stopped := func() error {
		stopMu.Lock()
		defer stopMu.Unlock()
		return stopErr
	}
	// paused: the user paused sync, or the upstream blocked it, during an
	// automatic drain (a forced one goes on).
	paused := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return maxID == 0 && e.pausedLocked()
	}
	var senders sync.WaitGroup
	for range e.o.Concurrency {
		senders.Go(func() {
			for j := range jobs {
				ans := answered{c: j.c}
				if err := cmp.Or(stopped(), ctx.Err()); err != nil {
					ans.out = e.requeue([]outbox.Action{j.a}, err, nil)[0]
				} else if paused() {
					ans.out = outbox.Outcome{ID: j.a.ID} // back to the queue, as it was
				} else {
					outs, err := e.sendWave(ctx, []outbox.Action{j.a}, &ans.rep)
					ans.out, ans.stop = outs[0], err
					if err != nil {
						stopMu.Lock()
						stopErr = cmp.Or(stopErr, err)
						stopMu.Unlock()
					}
				}
				answers <- ans
			}
		})
	}

	errSeq := e.recordErrSeq() // a record failing from now on stops this drain
	type claimResult struct {
		batch []outbox.Action
		want  int
		err   error
	}
	var (
		outstanding int   // claimed or adopted, not answered yet
		claiming    int   // writes asked for by the claim in progress (0: none)
		dry         bool  // the last claim found fewer writes due than it asked for
		stop        error // why this drain ends early
		started     bool  // a first claim was made
	)
	// A drain that only adopted writes since the last one found the queue
	// empty claims nothing: a claim is a transaction the enqueues wait for.
	dry = maxID == 0 && !e.mayClaim.Swap(false)
	claims := make(chan claimResult, 1)
	kick := e.kick
	if maxID > 0 {
		kick = nil // a forced drain leaves new work to Run, which the kick tells
	}
	done := ctx.Done()
	for {
		// Adopted writes first: a page waits for each.
		if stop == nil && !paused() {
			for outstanding+claiming < limit {
				a, ok := e.takeAdopted()
				if !ok {
					break
				}
				e.update(func() { e.st.Syncing = true })
				jobs <- job{a, &claimed{start: time.Now(), n: 1, left: 1}}
				outstanding++
			}
		}
		if err := e.recordErrSince(errSeq); err != nil {
			stop = cmp.Or(stop, err)
		}
		// Claims run beside this loop, so that a write adopted or answered
		// meanwhile does not wait for the database.
		if claiming == 0 && stop == nil && !dry && outstanding <= limit/2 && e.unrecorded() < limit && !paused() {
			want := limit - outstanding
			if !started {
				// A first claim of a few writes each, so that requests
				// start at once; the big ones follow while they run.
				want, started = min(want, 4*e.o.Concurrency), true
			}
			claiming = want
			go func() {
				batch, err := e.store.Claim(ctx, want, maxID)
				claims <- claimResult{batch, want, err}
			}()
		}
		if claiming == 0 && outstanding == 0 && (stop != nil || dry || paused()) {
			break
		}
		select {
		case r := <-claims:
			claiming = 0
			switch {
			case r.err != nil && ctx.Err() != nil:
				stop = cmp.Or(stop, ctx.Err())
			case r.err != nil:
				stop = cmp.Or(stop, fmt.Errorf("claim batch: %w", r.err))
				e.storeFailed(r.err)
			default:
				dry = len(r.batch) < r.want
			}
			if len(r.batch) > 0 {
				e.ReportStore(nil) // the claim wrote rows: the store works
				e.update(func() { e.st.Syncing = true })
				c := &claimed{start: time.Now(), n: len(r.batch), left: len(r.batch)}
				for _, a := range r.batch {
					jobs <- job{a, c}
				}
				outstanding += len(r.batch)
			}
		case a := <-answers:
			outstanding--
			rep.Batches += a.rep.Batches
			rep.Synced += a.rep.Synced
			rep.Rejected += a.rep.Rejected
			stop = cmp.Or(stop, a.stop)
			e.handOver(a)
		case <-kick:
			dry = false
		case <-e.wake: // an adopted write, or the recorder caught up: seen at the top
		case <-done:
			stop, done = cmp.Or(stop, ctx.Err()), nil
		}
	}
	close(jobs)
	senders.Wait()
	if maxID > 0 || stop != nil {
		// A forced drain reports what it recorded; a stopping engine
		// records what it sent before Run returns; after a failure, the
		// writes are back in the queue before the retry claims. An
		// automatic drain that went well does not wait: the next one may
		// start at once.
		e.waitRecorded()
		stop = cmp.Or(stop, e.recordErrSince(errSeq))
	}
	if stop != nil || paused() {
		e.mayClaim.Store(true) // writes went back to the queue
	}
	rep.Err = stop
}

// Reserve asks for a slot to send a new write the moment it is stored
// (HTTP mode with more than one in flight, while automatic sync runs
// and nothing holds it back). When it says yes, the caller stores the
// write already claimed (outbox.NewAction.Claimed) and hands it over with
// Adopt, or calls Release if nothing new was stored. So a write a page is
// waiting for skips the claim: one commit fewer on its way out. With one
// in flight writes keep the queue's order, so they always wait their turn.
func (e *Engine) Reserve() bool {
	if e.adopted == nil || e.o.Concurrency < 2 {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.running || e.pausedLocked() || e.unreachable != nil || e.storage != nil ||
		e.retryAtLocked().After(e.o.Clock.Now()) || e.reserved >= cap(e.adopted) {
		return false
	}
	e.reserved++
	return true
}

// Release gives back a slot from Reserve that was not used.
func (e *Engine) Release() {
	e.mu.Lock()
	e.reserved--
	e.mu.Unlock()
}

// Adopt hands over a write stored claimed in a slot from Reserve. A write
// that is not syncing (a store that does not claim at enqueue) is left to
// the queue.
func (e *Engine) Adopt(a outbox.Action) {
	if a.State != outbox.Syncing {
		e.Release()
		e.Kick()
		return
	}
	e.adopted <- a // never blocks: at most cap(adopted) slots are reserved
	signal(e.wake) // not a kick: there is nothing new to claim
}

// takeAdopted returns an adopted write, if one waits, and frees its slot.
func (e *Engine) takeAdopted() (outbox.Action, bool) {
	select {
	case a := <-e.adopted:
		e.mu.Lock()
		e.reserved--
		e.mu.Unlock()
		return a, true
	default:
		return outbox.Action{}, false
	}
}

// returnAdopted puts the adopted writes that wait back in the queue, as
// they were, when the engine is not sending.
func (e *Engine) returnAdopted(ctx context.Context) {
	if e.adopted == nil {
		return
	}
	var outs []outbox.Outcome
	for {
		a, ok := e.takeAdopted()
		if !ok {
			break
		}
		outs = append(outs, outbox.Outcome{ID: a.ID})
	}
	if len(outs) > 0 {
		e.record(ctx, outs) // kept and written before the next claim if it fails
		e.mayClaim.Store(true)
	}
}
