package syncer

import (
	"context"
	"sync"
	"time"

	"synctray/localserver/outbox"
)

// recordEvery is how long the recorder gathers outcomes into one commit.
// A write's answer reaches a waiting page before it is recorded
// (OnAnswer), so this delays only what the outbox shows, not the page.
const recordEvery = 100 * time.Millisecond

// recordGroup is the most outcomes the recorder gathers before it
// commits: a big group holds the writer long enough to delay the
// enqueues behind it (the write benchmark's p99).
const recordGroup = 64

// recorder commits HTTP mode's outcomes in groups, beside the drains: a
// drain hands each answer over and goes on, and the next drain does not
// wait for the last one's commit. Its goroutine runs while there is work
// and stops after recordEvery without any.
type recorder struct {
	mu      sync.Mutex
	cond    sync.Cond
	queue   []answered
	busy    int  // handed over, not recorded yet
	waiting int  // callers of waitRecorded: record now, without gathering
	running bool // recordLoop runs
	errs    int  // failed records so far
	err     error
	kick    chan struct{}
}

// handOver queues a for recording.
func (e *Engine) handOver(a answered) {
	r := &e.rec
	r.mu.Lock()
	r.queue = append(r.queue, a)
	r.busy++
	if !r.running {
		r.running = true
		go e.recordLoop()
	}
	r.mu.Unlock()
	signal(r.kick)
}

// unrecorded is how many outcomes wait for their commit: a drain claims
// no more while it is BatchSize, so that a slow disk bounds the memory.
func (e *Engine) unrecorded() int {
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	return e.rec.busy
}

// waitRecorded returns once every outcome handed over is recorded (or
// kept in pending after a failed commit).
func (e *Engine) waitRecorded() {
	r := &e.rec
	r.mu.Lock()
	r.waiting++
	r.mu.Unlock()
	signal(r.kick)
	r.mu.Lock()
	for r.busy > 0 {
		r.cond.Wait()
	}
	r.waiting--
	r.mu.Unlock()
}

// recordErrSeq and recordErrSince tell a drain about records that failed
// since it started.
func (e *Engine) recordErrSeq() int {
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	return e.rec.errs
}

func (e *Engine) recordErrSince(seq int) error {
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	if e.rec.errs != seq {
		return e.rec.err
	}
	return nil
}

func (e *Engine) recordLoop() {
	r := &e.rec
	gather := time.NewTimer(recordEvery)
	defer gather.Stop()
	for {
		gather.Reset(recordEvery)
	wait:
		for {
			r.mu.Lock()
			n, hurry := len(r.queue), r.waiting > 0
			r.mu.Unlock()
			if n >= recordGroup || hurry && n > 0 {
				break
			}
			select {
			case <-r.kick:
			case <-gather.C:
				break wait
			}
		}
		r.mu.Lock()
		group := r.queue
		r.queue = nil
		if len(group) == 0 {
			r.running = false
			r.cond.Broadcast()
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		outs := make([]outbox.Outcome, len(group))
		requeued := false
		for i, a := range group {
			outs[i] = a.out
			requeued = requeued || a.out.Status == ""
		}
		err := e.record(context.Background(), outs) // kept in pending if it fails
		if err == nil && requeued {
			e.Kick() // queued again: a claim may take them now
		}
		for _, a := range group {
			if a.c.left--; a.c.left == 0 {
				e.observe(Observation{What: ObserveBatch, Actions: a.c.n, Duration: time.Since(a.c.start)})
			}
		}
		r.mu.Lock()
		r.busy -= len(group)
		if err != nil {
			r.errs++
			r.err = err
		}
		r.cond.Broadcast()
		r.mu.Unlock()
		signal(e.wake) // a drain waiting for room, or to hear of the failure
	}
}
