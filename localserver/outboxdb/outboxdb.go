// Package outboxdb is the durable outbox: an outbox.Store kept in a SQLite
// database (github.com/mattn/go-sqlite3) in WAL mode with synchronous=FULL,
// so an action acknowledged to a client survives a crash or a power cut.
//
// All writes go through one connection; reads use a separate pool and run
// concurrently with the writer (WAL). Enqueues are group-committed: a
// single goroutine takes every enqueue waiting (up to Options.MaxBatch) and
// commits them in one transaction, so throughput is not bounded by the
// fsync rate. Every state change follows outbox.CanTransition, writes a row
// of history and, after its commit, is published to Options.OnChange.
//
// Open goes through internal/sqlitedb: the pragmas are checked, the file
// passes PRAGMA quick_check (a damaged one is refused with an error that
// wraps sqlitedb.ErrDamaged), and the schema is versioned with PRAGMA
// user_version and migrated.
// Timestamps are stored as fixed-width UTC text, so text order is time order.
package outboxdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"synctray/internal/sqlitedb"
	"synctray/localserver/outbox"
)

var _ outbox.Store = (*DB)(nil)

// Options configure a DB. Zero values are the documented defaults.
type Options struct {
	// Now tells the time of changes; nil: time.Now.
	Now func() time.Time
	// OnChange is called after each commit with the actions whose state or
	// fields changed (their new rows), in id order. Calls are made one at a
	// time, in commit order. It must not block, write to the DB or close
	// it (reading is fine); nil: no-op.
	OnChange func([]outbox.Action)
	// MaxBatch is the most enqueued actions committed in one group
	// transaction; 0: 512.
	MaxBatch int
	// MaxPageCount caps the database file at that many pages (SQLite's
	// max_page_count), as a disk quota would; writes past it fail with
	// outbox.ErrDiskFull. 0: no cap. Tests use it to fill the disk.
	MaxPageCount int
}

// DB is the SQLite outbox. Create it with Open; it is safe for concurrent use.
type DB struct {
	w        *sql.DB // writer: one connection, all writes
	r        *sql.DB // readers
	now      func() time.Time
	onChange func([]outbox.Action)
	maxBatch int

	// writeMu serializes write transactions; notifyMu is taken before
	// writeMu is released so OnChange calls happen in commit order while
	// the next transaction already runs.
	writeMu    sync.Mutex
	notifyMu   sync.Mutex
	notDurable bool // the writer runs with synchronous=NORMAL (under writeMu)

	// Group commit.
	enqCh      chan *enqReq
	closing    chan struct{}
	writerDone chan struct{}

	stmts writerStmts

	gate      gate
	closeOnce sync.Once
	closeErr  error
}

// writerStmts are prepared once on the writer connection and bound to each
// transaction with Tx.StmtContext (which reuses the prepared statement).
type writerStmts struct {
	insertAction  *sql.Stmt
	insertHistory *sql.Stmt
	actionByKey   *sql.Stmt
}

const actionCols = "id, key, type, payload, state, attempts, last_error, next_attempt_at, created_at, updated_at, synced_at, response"

// actionByKeySQL is the action with a key (the writer's prepared statement).
const actionByKeySQL = `SELECT ` + actionCols + ` FROM actions WHERE key = ?`

// Open opens (creating if needed, mode 0600) the outbox database at path,
// quick-checks it and brings its schema up to date. Errors wrap
// sqlitedb.ErrDamaged when the file is damaged.
func Open(path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("open outbox: empty path")
	}
	db := &DB{
		now:        opts.Now,
		onChange:   opts.OnChange,
		maxBatch:   opts.MaxBatch,
		enqCh:      make(chan *enqReq),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if db.now == nil {
		db.now = time.Now
	}
	if db.maxBatch <= 0 {
		db.maxBatch = 512
	}
	db.gate.init()
	ctx := context.Background()

	sdb, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Migrations: migrations, QuickCheck: true})
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	db.w, db.r = sdb.W, sdb.R
	if opts.MaxPageCount > 0 {
		// The writer is one connection that lives as long as the DB, so
		// the pragma holds for every write.
		if _, err := db.w.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", opts.MaxPageCount)); err != nil {
			sdb.Close()
			return nil, fmt.Errorf("open outbox %s: set max_page_count: %w", path, err)
		}
	}
	if err := db.stmts.prepare(ctx, db.w); err != nil {
		db.stmts.close()
		sdb.Close()
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	go db.runWriter()
	return db, nil
}

func (s *writerStmts) prepare(ctx context.Context, w *sql.DB) error {
	var err error
	if s.insertAction, err = w.PrepareContext(ctx,
		`INSERT INTO actions (key, type, payload, state, attempts, last_error, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, '', ?, ?)`); err != nil {
		return fmt.Errorf("prepare insert action: %w", err)
	}
	if s.insertHistory, err = w.PrepareContext(ctx,
		`INSERT INTO history (action_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)`); err != nil {
		return fmt.Errorf("prepare insert history: %w", err)
	}
	if s.actionByKey, err = w.PrepareContext(ctx, actionByKeySQL); err != nil {
		return fmt.Errorf("prepare action by key: %w", err)
	}
	return nil
}

func (s *writerStmts) close() {
	for _, st := range []*sql.Stmt{s.insertAction, s.insertHistory, s.actionByKey} {
		if st != nil {
			st.Close()
		}
	}
}

// Close stops the group-commit writer, after committing the enqueues it
// already holds, waits for the calls in flight and closes the database.
// Later calls return outbox.ErrClosed. Close is idempotent.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closing)
		<-db.writerDone
		db.gate.close()
		db.stmts.close()
		err := errors.Join(db.r.Close(), db.w.Close())
		if err != nil {
			db.closeErr = fmt.Errorf("close outbox: %w", err)
		}
	})
	return db.closeErr
}

// gate counts the calls in flight so Close can wait for them; once closed
// it turns new calls away (without blocking, so a nested call cannot
// deadlock against Close).
type gate struct {
	mu     sync.Mutex
	zero   *sync.Cond
	n      int
	closed bool
}

func (g *gate) init() { g.zero = sync.NewCond(&g.mu) }

func (g *gate) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return outbox.ErrClosed
	}
	g.n++
	return nil
}

func (g *gate) leave() {
	g.mu.Lock()
	g.n--
	if g.n == 0 {
		g.zero.Broadcast()
	}
	g.mu.Unlock()
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	for g.n > 0 {
		g.zero.Wait()
	}
	g.mu.Unlock()
}

// write runs fn in a write transaction. After the commit it calls
// afterCommit (if any) and then publishes the changed actions, in commit
// order with respect to other writes, without holding up the next write.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) ([]outbox.Action, error), afterCommit func()) error {
	return db.writeSync(ctx, true, fn, afterCommit)
}

// writeSync is write; durable false commits without waiting for the disk
// (synchronous=NORMAL for this one transaction), for a change a crash may
// lose: a claim (rows left "syncing" go back to "queued" at start). WAL
// frames are written in order, so the next durable commit makes it
// durable too. Should FULL not come back, writes are refused: a 2xx must
// keep meaning "on disk".
func (db *DB) writeSync(ctx context.Context, durable bool, fn func(tx *sql.Tx) ([]outbox.Action, error), afterCommit func()) error {
	db.writeMu.Lock()
	if db.notDurable {
		if _, err := db.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = FULL"); err != nil {
			db.writeMu.Unlock()
			return fmt.Errorf("restore synchronous=FULL: %w", err)
		}
		db.notDurable = false
	}
	if !durable {
		if _, err := db.w.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
			db.writeMu.Unlock()
			return storageError(fmt.Errorf("relax synchronous: %w", err))
		}
		db.notDurable = true
	}
	changed, err := db.runTx(ctx, fn)
	if !durable {
		if _, rerr := db.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = FULL"); rerr == nil {
			db.notDurable = false
		} // else: the next write restores it first, or refuses
	}
	if err != nil {
		db.writeMu.Unlock()
		return storageError(err)
	}
	db.notifyMu.Lock()
	db.writeMu.Unlock()
	defer db.notifyMu.Unlock()
	if afterCommit != nil {
		afterCommit()
	}
	if len(changed) > 0 && db.onChange != nil {
		slices.SortFunc(changed, func(a, b outbox.Action) int { return cmpID(a.ID, b.ID) })
		db.onChange(changed)
	}
	return nil
}

func (db *DB) runTx(ctx context.Context, fn func(tx *sql.Tx) ([]outbox.Action, error)) ([]outbox.Action, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	changed, err := fn(tx)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return changed, nil
}

// storageError marks err as outbox.ErrDiskFull or outbox.ErrCorrupt when
// SQLite says so, so that callers can tell people what is wrong.
func storageError(err error) error {
	switch {
	case sqlitedb.IsDiskFull(err):
		return fmt.Errorf("%w: %w", outbox.ErrDiskFull, err)
	case sqlitedb.IsCorrupt(err):
		return fmt.Errorf("%w: %w", outbox.ErrCorrupt, err)
	}
	return err
}

// markStorage is storageError for a read's named error result, in a
// defer: a read that finds the file damaged says so as writes do.
func markStorage(err *error) {
	if *err != nil {
		*err = storageError(*err)
	}
}

func cmpID(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Timestamps are stored as fixed-width UTC text with microseconds, so that
// text order is time order.
const tsLayout = "2006-01-02T15:04:05.000000Z"

// stamp is the current time at the stored precision.
func (db *DB) stamp() time.Time { return normTime(db.now()) }

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func fmtTime(t time.Time) string { return t.UTC().Format(tsLayout) }

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return fmtTime(*t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(tsLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad timestamp %q: %w", s, err)
	}
	return t, nil
}

func parseNullTime(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

type scanner interface{ Scan(dest ...any) error }

// scanAction reads one row of actionCols.
func scanAction(s scanner) (outbox.Action, error) {
	var (
		a                outbox.Action
		payload          []byte
		state            string
		next, synced     sql.NullString
		created, updated string
		response         string
	)
	if err := s.Scan(&a.ID, &a.Key, &a.Type, &payload, &state, &a.Attempts, &a.LastError, &next, &created, &updated, &synced, &response); err != nil {
		return a, err
	}
	a.Payload = payload
	if response != "" {
		a.Response = json.RawMessage(response)
	}
	a.State = outbox.State(state)
	var err error
	if a.CreatedAt, err = parseTime(created); err != nil {
		return a, err
	}
	if a.UpdatedAt, err = parseTime(updated); err != nil {
		return a, err
	}
	if a.NextAttemptAt, err = parseNullTime(next); err != nil {
		return a, err
	}
	if a.SyncedAt, err = parseNullTime(synced); err != nil {
		return a, err
	}
	return a, nil
}

// scanActions reads every row of rows and closes it.
func scanActions(rows *sql.Rows) ([]outbox.Action, error) {
	defer rows.Close()
	var out []outbox.Action
	for rows.Next() {
		a, err := scanAction(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
