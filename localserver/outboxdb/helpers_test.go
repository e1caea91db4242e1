package outboxdb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver/outbox"
)

var ctx = context.Background()

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder collects OnChange calls.
type recorder struct {
	db    *DB
	mu    sync.Mutex
	calls [][]outbox.Action
}

// openRec opens an outbox whose changes go to a recorder.
func openRec(tb testing.TB, o Options) (*DB, *recorder) {
	tb.Helper()
	rec := &recorder{}
	o.OnChange = rec.OnChange
	rec.db = mustOpen(tb, o)
	return rec.db, rec
}

func (r *recorder) OnChange(acts []outbox.Action) {
	cp := append([]outbox.Action(nil), acts...)
	r.mu.Lock()
	r.calls = append(r.calls, cp)
	r.mu.Unlock()
}

// take returns the calls so far and forgets them. Enqueue answers its
// caller just before it notifies; notifyMu is held from the commit until
// the notification is done, so taking it waits for notifications of the
// writes that have returned.
func (r *recorder) take() [][]outbox.Action {
	r.db.notifyMu.Lock()
	r.db.notifyMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// mustOpen opens a fresh outbox in a temporary directory with a fake clock
// (unless opts has one) and closes it at the end of the test.
func mustOpen(tb testing.TB, opts ...Options) *DB {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Now == nil {
		o.Now = newClock().Now
	}
	return mustOpenAt(tb, filepath.Join(tb.TempDir(), "outbox.db"), o)
}

func mustOpenAt(tb testing.TB, path string, o Options) *DB {
	tb.Helper()
	db, err := Open(path, o)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func newAction(key string) outbox.NewAction {
	return outbox.NewAction{Key: key, Type: "note.create", Payload: json.RawMessage(fmt.Sprintf(`{"key":%q,"text":"hello"}`, key))}
}

func mustEnqueue(tb testing.TB, db *DB) outbox.Action {
	tb.Helper()
	a, created, err := db.Enqueue(ctx, newAction(testsupport.NewKey()))
	if err != nil || !created {
		tb.Fatalf("Enqueue: created=%v err=%v", created, err)
	}
	return a
}

func mustGet(tb testing.TB, db *DB, id int64) (outbox.Action, []outbox.Change) {
	tb.Helper()
	a, h, err := db.Get(ctx, id)
	if err != nil {
		tb.Fatalf("Get(%d): %v", id, err)
	}
	return a, h
}

func mustClaim(tb testing.TB, db *DB, limit int, maxID int64) []outbox.Action {
	tb.Helper()
	acts, err := db.Claim(ctx, limit, maxID)
	if err != nil {
		tb.Fatalf("Claim: %v", err)
	}
	return acts
}

func ids(acts []outbox.Action) []int64 {
	out := make([]int64, len(acts))
	for i, a := range acts {
		out[i] = a.ID
	}
	return out
}

func queryInt(tb testing.TB, db *DB, q string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := db.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return n
}

// bulkInsert writes n actions (cycling through the states) straight into
// the tables in one transaction: a fast way to build a large outbox.
func bulkInsert(tb testing.TB, db *DB, n int) {
	tb.Helper()
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO actions (key, type, payload, state, attempts, last_error, created_at, updated_at)
		VALUES (?, 'note.create', ?, ?, 0, '', ?, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	hist, err := tx.PrepareContext(ctx, `INSERT INTO history (action_id, at, from_state, to_state, detail) VALUES (?, ?, '', 'queued', 'enqueued')`)
	if err != nil {
		tb.Fatal(err)
	}
	ts := fmtTime(time.Now())
	for i := 0; i < n; i++ {
		key := testsupport.NewKey()
		state := outbox.States[i%len(outbox.States)]
		res, err := ins.ExecContext(ctx, key, fmt.Sprintf(`{"n":%d,"text":"some note text of a typical size for a user action"}`, i), string(state), ts, ts)
		if err != nil {
			tb.Fatal(err)
		}
		id, _ := res.LastInsertId()
		if _, err := hist.ExecContext(ctx, id, ts); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
