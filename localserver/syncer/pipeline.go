package syncer

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"synctray/localserver/outbox"
)

// recordEvery is how long the recorder gathers outcomes into one commit.
// A write's answer reaches a waiting page before it is recorded
// (OnAnswer), so this delays only what the outbox shows, not the page.
const recordEvery = 20 * time.Millisecond

// claimed is one claim of writes in HTTP mode, for its batch observation.
type claimed struct {
	start time.Time
	n     int
	left  int // outcomes not recorded yet; only the recorder changes it
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
	jobs := make(chan struct {
		a outbox.Action
		c *claimed
	}, limit) // never more than limit claimed and not answered: sends to it never block
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
		return maxID == 0 && (e.st.WorkOffline || e.blocked != nil)
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

	toRecord := make(chan answered, limit)
	recordErr := make(chan error, 1)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for first := range toRecord {
			// A group: what comes within recordEvery of the first, so
			// that a slow upstream's answers share a commit too.
			group := []answered{first}
			window := time.NewTimer(recordEvery)
		more:
			for len(group) < limit {
				select {
				case a, ok := <-toRecord:
					if !ok {
						break more
					}
					group = append(group, a)
				case <-window.C:
					break more
				}
			}
			window.Stop()
			outs := make([]outbox.Outcome, len(group))
			for i, a := range group {
				outs[i] = a.out
			}
			if err := e.record(ctx, outs); err != nil {
				select {
				case recordErr <- err:
				default:
				}
			}
			for _, a := range group {
				if a.c.left--; a.c.left == 0 {
					e.observe(Observation{What: ObserveBatch, Actions: a.c.n, Duration: time.Since(a.c.start)})
				}
			}
		}
	}()

	var (
		outstanding int   // claimed, not answered yet
		dry         bool  // the last claim found fewer writes due than it asked for
		stop        error // why this drain ends early
		started     bool  // a first claim was made
	)
	kick := e.kick
	if maxID > 0 {
		kick = nil // a forced drain leaves new work to Run, which the kick tells
	}
	done := ctx.Done()
	for {
		if stop == nil && !dry && outstanding <= limit/2 && !paused() {
			want := limit - outstanding
			if !started {
				// A first claim of a few writes each, so that requests
				// start at once; the big ones follow while they run.
				want, started = min(want, 4*e.o.Concurrency), true
			}
			batch, err := e.store.Claim(ctx, want, maxID)
			switch {
			case err != nil && ctx.Err() != nil:
				stop = ctx.Err()
			case err != nil:
				stop = fmt.Errorf("claim batch: %w", err)
				e.storeFailed(err)
			default:
				dry = len(batch) < want
			}
			if len(batch) > 0 {
				e.ReportStore(nil) // the claim wrote rows: the store works
				e.update(func() { e.st.Syncing = true })
				c := &claimed{start: time.Now(), n: len(batch), left: len(batch)}
				for _, a := range batch {
					jobs <- struct {
						a outbox.Action
						c *claimed
					}{a, c}
				}
				outstanding += len(batch)
			}
		}
		if outstanding == 0 && (stop != nil || dry || paused()) {
			break
		}
		select {
		case a := <-answers:
			outstanding--
			rep.Batches += a.rep.Batches
			rep.Synced += a.rep.Synced
			rep.Rejected += a.rep.Rejected
			stop = cmp.Or(stop, a.stop)
			toRecord <- a
		case <-kick:
			dry = false
		case err := <-recordErr:
			stop = cmp.Or(stop, err)
		case <-done:
			stop, done = cmp.Or(stop, ctx.Err()), nil
		}
	}
	close(jobs)
	senders.Wait()
	close(toRecord)
	<-recorded
	select {
	case err := <-recordErr:
		stop = cmp.Or(stop, err)
	default:
	}
	rep.Err = stop
}
