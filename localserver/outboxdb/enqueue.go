package outboxdb

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"synctray/localserver/outbox"
)

// enqReq is one Enqueue or EnqueueBatch call handed to the group-commit
// writer. The writer fills in the items' results and then sends on done
// (nil: see the results); done is buffered so the writer never waits.
type enqReq struct {
	ctx   context.Context
	items []enqItem
	done  chan error
	err   error // set by enqueueTx: the request was dropped (its ctx ended)
}

type enqItem struct {
	n       outbox.NewAction // normalized: lower-case key, compact payload
	invalid error            // *outbox.InvalidError found before the request was sent
	res     outbox.EnqueueResult
}

// normalize validates a new action and returns it with its key in lower
// case (a UUID is case-insensitive) and its payload compacted, the form
// that is stored and compared for idempotency.
func normalize(n outbox.NewAction) (outbox.NewAction, error) {
	if err := n.Validate(); err != nil {
		return n, err
	}
	var buf bytes.Buffer
	buf.Grow(len(n.Payload))
	if err := json.Compact(&buf, n.Payload); err != nil {
		return n, &outbox.InvalidError{Field: "payload", Reason: "payload is not valid JSON"}
	}
	return outbox.NewAction{Key: strings.ToLower(n.Key), Type: n.Type, Payload: buf.Bytes(), Claimed: n.Claimed}, nil
}

// Enqueue stores a new action, or returns the one already stored under its
// key (created=false) if it has the same type and payload. Errors:
// *outbox.InvalidError, outbox.ErrKeyConflict, outbox.ErrClosed.
//
// The action is committed together with the other enqueues waiting at the
// same time (group commit). If ctx ends while the call waits, it returns
// ctx's error; the action may or may not have been committed.
func (db *DB) Enqueue(ctx context.Context, n outbox.NewAction) (outbox.Action, bool, error) {
	nn, err := normalize(n)
	if err != nil {
		return outbox.Action{}, false, err
	}
	req := &enqReq{ctx: ctx, items: []enqItem{{n: nn}}, done: make(chan error, 1)}
	if err := db.submit(ctx, req); err != nil {
		return outbox.Action{}, false, err
	}
	res := req.items[0].res
	if res.Err != nil {
		return outbox.Action{}, false, res.Err
	}
	return res.Action, res.Created, nil
}

// EnqueueBatch stores several actions, in order, in one transaction. An
// error that concerns one action (*outbox.InvalidError,
// outbox.ErrKeyConflict) is in its result and does not stop the others.
func (db *DB) EnqueueBatch(ctx context.Context, ns []outbox.NewAction) ([]outbox.EnqueueResult, error) {
	items := make([]enqItem, len(ns))
	valid := 0
	for i, n := range ns {
		nn, err := normalize(n)
		if err != nil {
			items[i].invalid = err
			continue
		}
		items[i].n = nn
		valid++
	}
	if valid > 0 {
		req := &enqReq{ctx: ctx, items: items, done: make(chan error, 1)}
		if err := db.submit(ctx, req); err != nil {
			return nil, err
		}
	}
	out := make([]outbox.EnqueueResult, len(items))
	for i := range items {
		if items[i].invalid != nil {
			out[i] = outbox.EnqueueResult{Err: items[i].invalid}
			continue
		}
		out[i] = items[i].res
	}
	return out, nil
}

// submit hands req to the writer and waits for its answer.
func (db *DB) submit(ctx context.Context, req *enqReq) error {
	select {
	case <-db.closing:
		return outbox.ErrClosed
	default:
	}
	select {
	case db.enqCh <- req:
	case <-db.closing:
		return outbox.ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("enqueue: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		select {
		case err := <-req.done:
			return err
		default:
			return fmt.Errorf("enqueue: %w", ctx.Err())
		}
	}
}

// runWriter is the group-commit writer: it takes every request waiting (up
// to maxBatch actions) and commits them in one transaction. When the DB
// closes it commits what is still waiting and returns; the enqCh channel is
// unbuffered, so a request is either received here or its sender sees
// closing.
func (db *DB) runWriter() {
	defer close(db.writerDone)
	for {
		select {
		case req := <-db.enqCh:
			db.commitGroup(db.gather(req))
		case <-db.closing:
			for {
				select {
				case req := <-db.enqCh:
					db.commitGroup(db.gather(req))
				default:
					return
				}
			}
		}
	}
}

// gather adds to first the requests already waiting, up to maxBatch
// actions in all (a single larger request is never split).
func (db *DB) gather(first *enqReq) []*enqReq {
	group := []*enqReq{first}
	n := len(first.items)
	for n < db.maxBatch {
		select {
		case req := <-db.enqCh:
			group = append(group, req)
			n += len(req.items)
		default:
			return group
		}
	}
	return group
}

// commitGroup commits a group of requests in one transaction and answers
// each. Should the transaction fail, each request is retried in a
// transaction of its own, so one bad request cannot fail the others.
func (db *DB) commitGroup(group []*enqReq) {
	// The transaction serves several callers: one caller's cancellation
	// must not abort it. A request whose ctx has ended by the time the
	// transaction starts is left out (see enqueueTx).
	ctx := context.Background()
	answer := func(reqs []*enqReq) func() {
		return func() {
			for _, req := range reqs {
				req.done <- req.err
			}
		}
	}
	err := db.write(ctx, func(tx *sql.Tx) ([]outbox.Action, error) {
		return db.enqueueTx(ctx, tx, group)
	}, answer(group))
	if err == nil {
		return
	}
	if len(group) == 1 {
		group[0].done <- fmt.Errorf("enqueue: %w", err)
		return
	}
	for _, req := range group {
		one := []*enqReq{req}
		err := db.write(ctx, func(tx *sql.Tx) ([]outbox.Action, error) {
			return db.enqueueTx(ctx, tx, one)
		}, answer(one))
		if err != nil {
			req.done <- fmt.Errorf("enqueue: %w", err)
		}
	}
}

// enqueueTx stores the requests' actions in tx, in order, and records each
// item's result; it skips a request whose ctx has ended. A key stored
// earlier (in this transaction too) yields the stored action or
// ErrKeyConflict. It returns the created actions.
func (db *DB) enqueueTx(ctx context.Context, tx *sql.Tx, reqs []*enqReq) ([]outbox.Action, error) {
	ins := tx.StmtContext(ctx, db.stmts.insertAction)
	hist := tx.StmtContext(ctx, db.stmts.insertHistory)
	byKey := tx.StmtContext(ctx, db.stmts.actionByKey)
	now := db.stamp()
	ts := fmtTime(now)
	var created []outbox.Action
	for _, req := range reqs {
		req.err = nil
		if err := req.ctx.Err(); err != nil {
			req.err = fmt.Errorf("enqueue: %w", err)
			continue
		}
		for i := range req.items {
			it := &req.items[i]
			if it.invalid != nil {
				it.res = outbox.EnqueueResult{Err: it.invalid}
				continue
			}
			// Look the key up first (rather than INSERT ... ON CONFLICT),
			// so that an idempotent retry does not use up an id.
			stored, err := scanAction(byKey.QueryRowContext(ctx, it.n.Key))
			switch {
			case err == nil:
				if stored.Type != it.n.Type || !bytes.Equal(stored.Payload, it.n.Payload) {
					it.res = outbox.EnqueueResult{Err: outbox.ErrKeyConflict}
				} else {
					it.res = outbox.EnqueueResult{Action: stored}
				}
				continue
			case !errors.Is(err, sql.ErrNoRows):
				return nil, fmt.Errorf("read action by key: %w", err)
			}
			state, attempts := outbox.Queued, 0
			if it.n.Claimed {
				state, attempts = outbox.Syncing, 1
			}
			res, err := ins.ExecContext(ctx, it.n.Key, it.n.Type, string(it.n.Payload), string(state), attempts, ts, ts)
			if err != nil {
				return nil, fmt.Errorf("insert action: %w", err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return nil, fmt.Errorf("insert action: %w", err)
			}
			if _, err := hist.ExecContext(ctx, id, ts, "", string(outbox.Queued), "enqueued"); err != nil {
				return nil, fmt.Errorf("insert history: %w", err)
			}
			if it.n.Claimed {
				if _, err := hist.ExecContext(ctx, id, ts, string(outbox.Queued), string(outbox.Syncing), "attempt 1"); err != nil {
					return nil, fmt.Errorf("insert history: %w", err)
				}
			}
			a := outbox.Action{
				ID: id, Key: it.n.Key, Type: it.n.Type, Payload: it.n.Payload,
				State: state, Attempts: attempts, CreatedAt: now, UpdatedAt: now,
			}
			it.res = outbox.EnqueueResult{Action: a, Created: true}
			created = append(created, a)
		}
	}
	return created, nil
}
