package outboxdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver/outbox"
)

func TestOpenPragmasAndSchema(t *testing.T) {
	db := mustOpen(t)
	var mode string
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("writer journal_mode = %q, %v; want wal", mode, err)
	}
	if err := db.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("reader journal_mode = %q, %v; want wal", mode, err)
	}
	var syncMode, fk, version int
	if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil || syncMode != 2 {
		t.Fatalf("synchronous = %d, %v; want 2 (FULL)", syncMode, err)
	}
	if err := db.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if err := db.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", version, err, len(migrations))
	}
	for _, table := range []string{"actions", "history"} {
		if n := queryInt(t, db, `SELECT strict FROM pragma_table_list WHERE name = ?`, table); n != 1 {
			t.Errorf("table %s is not STRICT", table)
		}
	}
	// Readers cannot write.
	if _, err := db.r.ExecContext(ctx, `DELETE FROM actions`); err == nil {
		t.Error("reader pool could write")
	}
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := Open(path, Options{}); err == nil {
		db.Close()
		t.Fatal("Open accepted a newer schema")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestOpenPathWithSpecialCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), testsupport.OddName("a dir"), "outbox.db")
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	db := mustOpenAt(t, path, Options{})
	mustEnqueue(t, db)
	if !fileExists(path) {
		t.Fatalf("database not created at %s", path)
	}
}

func TestReopenKeepsRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	clk := newClock()
	db, err := Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var want []outbox.Action
	for i := 0; i < 5; i++ {
		want = append(want, mustEnqueue(t, db))
	}
	claimed := mustClaim(t, db, 2, 0)
	if err := db.Complete(ctx, []outbox.Outcome{{ID: claimed[0].ID, Status: outbox.Applied}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpenAt(t, path, Options{Now: clk.Now})
	page, err := db.List(ctx, outbox.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Actions) != 5 {
		t.Fatalf("after reopen: %d actions, want 5", len(page.Actions))
	}
	a, hist := mustGet(t, db, want[0].ID)
	if a.State != outbox.Synced || len(hist) != 3 {
		t.Fatalf("after reopen: state %s, %d history rows; want synced, 3", a.State, len(hist))
	}
	if a.Key != want[0].Key || string(a.Payload) != string(want[0].Payload) || !a.CreatedAt.Equal(want[0].CreatedAt) {
		t.Fatalf("after reopen: %+v, want %+v", a, want[0])
	}
	n, err := db.RecoverSyncing(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RecoverSyncing = %d, %v; want 1", n, err)
	}
}

func TestTimestampsStoredFixedWidthUTC(t *testing.T) {
	clk := newClock()
	db := mustOpen(t, Options{Now: func() time.Time { return clk.Now().In(time.FixedZone("X", 5*3600)) }})
	a := mustEnqueue(t, db)
	var created string
	if err := db.r.QueryRowContext(ctx, `SELECT created_at FROM actions WHERE id = ?`, a.ID).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if created != "2025-03-14T09:26:53.589793Z" {
		t.Fatalf("created_at stored as %q", created)
	}
	if a.CreatedAt.Location() != time.UTC || !a.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("CreatedAt = %v", a.CreatedAt)
	}
	got, _ := mustGet(t, db, a.ID)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("Get = %+v\nEnqueue returned %+v", got, a)
	}
}

func TestEnqueueIdempotent(t *testing.T) {
	db, rec := openRec(t, Options{})
	key := testsupport.NewKey()
	n := outbox.NewAction{Key: key, Type: "note.create", Payload: json.RawMessage(`{"text": "hi",  "n": [1, 2]}`)}
	a1, created, err := db.Enqueue(ctx, n)
	if err != nil || !created {
		t.Fatalf("first Enqueue: created=%v err=%v", created, err)
	}
	if string(a1.Payload) != `{"text":"hi","n":[1,2]}` {
		t.Errorf("payload not compacted: %s", a1.Payload)
	}
	if a1.State != outbox.Queued || a1.Attempts != 0 || a1.NextAttemptAt != nil || a1.SyncedAt != nil {
		t.Errorf("new action: %+v", a1)
	}
	// Same key, same type, same payload up to whitespace, key in upper case.
	again := n
	again.Key = strings.ToUpper(key)
	again.Payload = json.RawMessage(`{"text":"hi","n":[1,2]}`)
	a2, created, err := db.Enqueue(ctx, again)
	if err != nil || created {
		t.Fatalf("second Enqueue: created=%v err=%v", created, err)
	}
	if !reflect.DeepEqual(a1, a2) {
		t.Fatalf("second Enqueue returned %+v, want %+v", a2, a1)
	}
	// Different payload or type: conflict.
	diff := n
	diff.Payload = json.RawMessage(`{"text":"bye"}`)
	if _, _, err := db.Enqueue(ctx, diff); !errors.Is(err, outbox.ErrKeyConflict) {
		t.Fatalf("different payload: err = %v, want ErrKeyConflict", err)
	}
	diff = n
	diff.Type = "note.delete"
	if _, _, err := db.Enqueue(ctx, diff); !errors.Is(err, outbox.ErrKeyConflict) {
		t.Fatalf("different type: err = %v, want ErrKeyConflict", err)
	}
	if c := queryInt(t, db, `SELECT count(*) FROM actions`); c != 1 {
		t.Fatalf("%d rows, want 1", c)
	}
	_, hist := mustGet(t, db, a1.ID)
	if len(hist) != 1 || hist[0].From != "" || hist[0].To != outbox.Queued {
		t.Fatalf("history = %+v, want one creation entry", hist)
	}
	if calls := rec.take(); len(calls) != 1 || len(calls[0]) != 1 || calls[0][0].ID != a1.ID {
		t.Fatalf("OnChange calls = %+v, want one with the new action", calls)
	}
}

func TestEnqueueValidation(t *testing.T) {
	db := mustOpen(t)
	key := testsupport.NewKey()
	tests := []struct {
		name     string
		n        outbox.NewAction
		field    string
		tooLarge bool
	}{
		{"missing key", outbox.NewAction{Type: "t", Payload: json.RawMessage(`{}`)}, "key", false},
		{"non-UUID key", outbox.NewAction{Key: "order-42", Type: "t", Payload: json.RawMessage(`{}`)}, "key", false},
		{"empty type", outbox.NewAction{Key: key, Payload: json.RawMessage(`{}`)}, "type", false},
		{"invalid JSON", outbox.NewAction{Key: key, Type: "t", Payload: json.RawMessage(`{"a":}`)}, "payload", false},
		{"empty payload", outbox.NewAction{Key: key, Type: "t"}, "payload", false},
		{"payload > 256 KiB", outbox.NewAction{Key: key, Type: "t",
			Payload: json.RawMessage(`"` + strings.Repeat("a", outbox.MaxPayloadBytes) + `"`)}, "payload", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := db.Enqueue(ctx, tt.n)
			var inv *outbox.InvalidError
			if !errors.As(err, &inv) || inv.Field != tt.field || inv.TooLarge != tt.tooLarge {
				t.Fatalf("err = %#v, want *InvalidError on %s (tooLarge %v)", err, tt.field, tt.tooLarge)
			}
			res, err := db.EnqueueBatch(ctx, []outbox.NewAction{tt.n})
			if err != nil || len(res) != 1 || !errors.As(res[0].Err, &inv) {
				t.Fatalf("EnqueueBatch = %+v, %v; want the *InvalidError in the result", res, err)
			}
		})
	}
	// A payload of exactly the limit is fine.
	n := outbox.NewAction{Key: key, Type: "t", Payload: json.RawMessage(`"` + strings.Repeat("a", outbox.MaxPayloadBytes-2) + `"`)}
	if _, _, err := db.Enqueue(ctx, n); err != nil {
		t.Fatalf("payload at the limit: %v", err)
	}
	if c := queryInt(t, db, `SELECT count(*) FROM actions`); c != 1 {
		t.Fatalf("%d rows, want 1", c)
	}
}

func TestEnqueueBatch(t *testing.T) {
	db, rec := openRec(t, Options{})
	stored := mustEnqueue(t, db)
	rec.take()
	k1, k2 := testsupport.NewKey(), testsupport.NewKey()
	conflict := newAction(stored.Key)
	conflict.Payload = json.RawMessage(`{"other":true}`)
	ns := []outbox.NewAction{
		newAction(k1),
		{Key: "bad", Type: "t", Payload: json.RawMessage(`1`)},
		newAction(stored.Key), // already stored, same action
		conflict,              // already stored, different payload
		newAction(k2),
		newAction(k1), // same key earlier in this batch
		{Key: k1, Type: "other", Payload: json.RawMessage(`1`)}, // conflicts with the batch's first
	}
	res, err := db.EnqueueBatch(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	var inv *outbox.InvalidError
	check := []struct {
		created bool
		err     func(error) bool
	}{
		{true, nil},
		{false, func(err error) bool { return errors.As(err, &inv) }},
		{false, nil},
		{false, func(err error) bool { return errors.Is(err, outbox.ErrKeyConflict) }},
		{true, nil},
		{false, nil},
		{false, func(err error) bool { return errors.Is(err, outbox.ErrKeyConflict) }},
	}
	for i, c := range check {
		r := res[i]
		if c.err != nil {
			if !c.err(r.Err) {
				t.Errorf("item %d: err = %v", i, r.Err)
			}
			continue
		}
		if r.Err != nil || r.Created != c.created {
			t.Errorf("item %d: created=%v err=%v, want created=%v", i, r.Created, r.Err, c.created)
		}
	}
	if res[2].Action.ID != stored.ID || res[5].Action.ID != res[0].Action.ID || res[4].Action.ID <= res[0].Action.ID {
		t.Errorf("ids: stored %d, results %d %d %d", stored.ID, res[2].Action.ID, res[0].Action.ID, res[5].Action.ID)
	}
	if c := queryInt(t, db, `SELECT count(*) FROM actions`); c != 3 {
		t.Fatalf("%d rows, want 3", c)
	}
	// One commit, one notification with the two new actions in id order.
	calls := rec.take()
	if len(calls) != 1 || !reflect.DeepEqual(ids(calls[0]), []int64{res[0].Action.ID, res[4].Action.ID}) {
		t.Fatalf("OnChange calls = %v", calls)
	}
	if res, err := db.EnqueueBatch(ctx, nil); err != nil || len(res) != 0 {
		t.Fatalf("empty batch: %v, %v", res, err)
	}
}

func TestEnqueueConcurrent(t *testing.T) {
	db, rec := openRec(t, Options{})
	const workers, perWorker, distinct = 64, 100, 4000
	keys := make([]string, distinct)
	for i := range keys {
		keys[i] = testsupport.NewKey()
	}
	type result struct {
		key     string
		id      int64
		created bool
	}
	results := make([][]result, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				key := keys[(w*perWorker+i*7919)%distinct]
				a, created, err := db.Enqueue(ctx, newAction(key))
				if err != nil {
					errs <- err
					return
				}
				if a.Key != key {
					errs <- fmt.Errorf("got action for key %s, want %s", a.Key, key)
					return
				}
				results[w] = append(results[w], result{key, a.ID, created})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	createdBy := map[string]int{}
	idOf := map[string]int64{}
	total := 0
	for _, rs := range results {
		for _, r := range rs {
			total++
			if r.created {
				createdBy[r.key]++
			}
			if id, ok := idOf[r.key]; ok && id != r.id {
				t.Fatalf("key %s got ids %d and %d", r.key, id, r.id)
			}
			idOf[r.key] = r.id
		}
	}
	if total != workers*perWorker {
		t.Fatalf("%d results, want %d", total, workers*perWorker)
	}
	for key := range idOf {
		if createdBy[key] != 1 {
			t.Fatalf("key %s created %d times", key, createdBy[key])
		}
	}
	rows := queryInt(t, db, `SELECT count(*) FROM actions`)
	if rows != int64(len(idOf)) {
		t.Fatalf("%d rows for %d keys", rows, len(idOf))
	}
	if h := queryInt(t, db, `SELECT count(*) FROM history`); h != rows {
		t.Fatalf("%d history rows for %d actions", h, rows)
	}
	notified := 0
	for _, c := range rec.take() {
		for i := 1; i < len(c); i++ {
			if c[i].ID <= c[i-1].ID {
				t.Fatal("OnChange actions not in id order")
			}
		}
		notified += len(c)
	}
	if notified != int(rows) {
		t.Fatalf("OnChange saw %d new actions, want %d", notified, rows)
	}
}

// TestEnqueueGroup holds the writer back so that enqueues pile up and are
// committed as one group: the same key several times in a group yields one
// action, and a conflicting or cancelled request does not fail the others.
func TestEnqueueGroup(t *testing.T) {
	db, rec := openRec(t, Options{})
	stored := mustEnqueue(t, db)
	rec.take()
	key := testsupport.NewKey()
	type out struct {
		a       outbox.Action
		created bool
		err     error
	}
	const n = 20
	outs := make([]out, n)
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	db.writeMu.Lock()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			na, c := newAction(key), ctx
			switch {
			case i%5 == 3:
				na = newAction(testsupport.NewKey())
			case i == 4:
				na = newAction(stored.Key)
				na.Payload = json.RawMessage(`"conflict"`)
			case i == 9:
				na, c = newAction(testsupport.NewKey()), cctx
			}
			outs[i].a, outs[i].created, outs[i].err = db.Enqueue(c, na)
		}()
	}
	time.Sleep(100 * time.Millisecond) // let them all reach the writer
	cancel()
	db.writeMu.Unlock()
	wg.Wait()
	var keyID int64
	created := 0
	for i, o := range outs {
		switch {
		case i == 4:
			if !errors.Is(o.err, outbox.ErrKeyConflict) {
				t.Errorf("conflicting request: err = %v", o.err)
			}
		case i == 9:
			if !errors.Is(o.err, context.Canceled) {
				t.Errorf("cancelled request: err = %v", o.err)
			}
		case i%5 == 3:
			if o.err != nil || !o.created {
				t.Errorf("request %d: created=%v err=%v", i, o.created, o.err)
			}
		default:
			if o.err != nil {
				t.Errorf("request %d: %v", i, o.err)
				continue
			}
			if keyID != 0 && o.a.ID != keyID {
				t.Errorf("request %d: id %d, want %d", i, o.a.ID, keyID)
			}
			keyID = o.a.ID
			if o.created {
				created++
			}
		}
	}
	if created != 1 {
		t.Errorf("key created %d times", created)
	}
	if c := queryInt(t, db, `SELECT count(*) FROM actions`); c != 1+1+4 {
		t.Errorf("%d rows, want 6", c)
	}
	// The writer took the first request before it blocked; the rest came
	// in as one group.
	if calls := rec.take(); len(calls) > 2 {
		t.Errorf("%d commits, want at most 2", len(calls))
	}
}

func TestEnqueueCancelledContext(t *testing.T) {
	db := mustOpen(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for i := 0; i < 20; i++ {
		if _, _, err := db.Enqueue(cctx, newAction(testsupport.NewKey())); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	}
	if c := queryInt(t, db, `SELECT count(*) FROM actions`); c != 0 {
		t.Fatalf("%d rows, want 0", c)
	}
}

// setStates makes one new action in each of the given states through the
// store's API and returns them in the same order. Claim is FIFO, so the
// outbox must hold no queued action beforehand.
func setStates(t *testing.T, db *DB, states ...outbox.State) []outbox.Action {
	t.Helper()
	out := make([]outbox.Action, len(states))
	var claim []int64
	for i, s := range states {
		if s == outbox.Syncing || s == outbox.Synced || s == outbox.Failed {
			out[i] = mustEnqueue(t, db)
			claim = append(claim, out[i].ID)
		}
	}
	for i, s := range states {
		if s == outbox.Queued || s == outbox.Cancelled {
			out[i] = mustEnqueue(t, db)
		}
	}
	if len(claim) > 0 {
		if got := mustClaim(t, db, len(claim), 0); !reflect.DeepEqual(ids(got), claim) {
			t.Fatalf("setStates: claimed %v, want %v", ids(got), claim)
		}
	}
	var outcomes []outbox.Outcome
	for i, s := range states {
		switch s {
		case outbox.Synced:
			outcomes = append(outcomes, outbox.Outcome{ID: out[i].ID, Status: outbox.Applied})
		case outbox.Failed:
			outcomes = append(outcomes, outbox.Outcome{ID: out[i].ID, Status: outbox.Rejected, Error: "no"})
		case outbox.Cancelled:
			if _, err := db.Cancel(ctx, out[i].ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Complete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	for i, s := range states {
		out[i], _ = mustGet(t, db, out[i].ID)
		if out[i].State != s {
			t.Fatalf("setStates: action %d is %s, want %s", out[i].ID, out[i].State, s)
		}
	}
	return out
}

func setState(t *testing.T, db *DB, s outbox.State) outbox.Action {
	t.Helper()
	return setStates(t, db, s)[0]
}

// TestTransitionsAllPairs tries every (from, to) pair through each store
// API that moves an action to "to": the legal ones succeed and are recorded
// in the history, the others return *TransitionError and change nothing.
func TestTransitionsAllPairs(t *testing.T) {
	type op struct {
		name string
		// allowed: the sources this API accepts (a subset of the legal edges).
		allowed []outbox.State
		do      func(db *DB, id int64) error
	}
	complete := func(s outbox.Status) func(db *DB, id int64) error {
		return func(db *DB, id int64) error {
			return db.Complete(ctx, []outbox.Outcome{{ID: id, Status: s, Error: "e"}})
		}
	}
	ops := map[outbox.State][]op{
		outbox.Queued: {
			{"Retry", []outbox.State{outbox.Failed}, func(db *DB, id int64) error { _, err := db.Retry(ctx, id); return err }},
			{"Complete(transient)", []outbox.State{outbox.Syncing}, complete("")},
		},
		outbox.Syncing: {
			{"Claim", []outbox.State{outbox.Queued}, func(db *DB, id int64) error {
				got, err := db.Claim(ctx, 10, id)
				if err == nil && len(got) == 0 {
					// Claim takes only queued actions; others are not an error, just not claimed.
					return errNotClaimed
				}
				return err
			}},
		},
		outbox.Synced: {
			{"Complete(applied)", []outbox.State{outbox.Syncing}, complete(outbox.Applied)},
			{"Complete(duplicate)", []outbox.State{outbox.Syncing}, complete(outbox.Duplicate)},
		},
		outbox.Failed: {
			{"Complete(rejected)", []outbox.State{outbox.Syncing}, complete(outbox.Rejected)},
		},
		outbox.Cancelled: {
			{"Cancel", []outbox.State{outbox.Queued, outbox.Failed}, func(db *DB, id int64) error { _, err := db.Cancel(ctx, id); return err }},
		},
	}
	performed := map[[2]outbox.State]bool{}
	for _, from := range outbox.States {
		for _, to := range outbox.States {
			for _, o := range ops[to] {
				t.Run(fmt.Sprintf("%s_to_%s_by_%s", from, to, o.name), func(t *testing.T) {
					db := mustOpen(t)
					a := setState(t, db, from)
					before, histBefore := mustGet(t, db, a.ID)
					err := o.do(db, a.ID)
					allowed := false
					for _, s := range o.allowed {
						allowed = allowed || s == from
					}
					if allowed != outbox.CanTransition(from, to) && allowed {
						t.Fatalf("API allows %s→%s, which the state machine forbids", from, to)
					}
					after, histAfter := mustGet(t, db, a.ID)
					if allowed {
						if err != nil {
							t.Fatalf("%s→%s: %v", from, to, err)
						}
						if after.State != to {
							t.Fatalf("state %s, want %s", after.State, to)
						}
						last := histAfter[len(histAfter)-1]
						if len(histAfter) != len(histBefore)+1 || last.From != from || last.To != to {
							t.Fatalf("history %+v, want a %s→%s entry", histAfter, from, to)
						}
						performed[[2]outbox.State{from, to}] = true
						return
					}
					var te *outbox.TransitionError
					switch {
					case o.name == "Claim":
						if !errors.Is(err, errNotClaimed) {
							t.Fatalf("Claim of a %s action: %v", from, err)
						}
					case !errors.As(err, &te):
						t.Fatalf("%s→%s: err = %v, want *TransitionError", from, to, err)
					case te.ID != a.ID || te.From != from || te.To != to:
						t.Fatalf("TransitionError = %+v, want {%d %s %s}", te, a.ID, from, to)
					}
					if !reflect.DeepEqual(before, after) || len(histAfter) != len(histBefore) {
						t.Fatalf("action changed:\n%+v\n%+v", before, after)
					}
				})
			}
		}
	}
	// Every edge of the state machine is reachable through the store.
	for _, from := range outbox.States {
		for _, to := range outbox.States {
			if outbox.CanTransition(from, to) && !performed[[2]outbox.State{from, to}] && !t.Failed() {
				t.Errorf("no store API performs %s→%s", from, to)
			}
		}
	}
}

var errNotClaimed = errors.New("not claimed")

func TestNotFound(t *testing.T) {
	db := mustOpen(t)
	if _, _, err := db.Get(ctx, 42); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Get: %v", err)
	}
	if _, err := db.Cancel(ctx, 42); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Cancel: %v", err)
	}
	if _, err := db.Retry(ctx, 42); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Retry: %v", err)
	}
	if err := db.Complete(ctx, []outbox.Outcome{{ID: 42, Status: outbox.Applied}}); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Complete: %v", err)
	}
}

func TestClaimFIFOAndMaxID(t *testing.T) {
	clk := newClock()
	db := mustOpen(t, Options{Now: clk.Now})
	var all []int64
	for i := 0; i < 10; i++ {
		all = append(all, mustEnqueue(t, db).ID)
	}
	if id, err := db.MaxQueuedID(ctx); err != nil || id != all[9] {
		t.Fatalf("MaxQueuedID = %d, %v", id, err)
	}
	clk.Advance(time.Second)
	got := mustClaim(t, db, 3, 0)
	if !reflect.DeepEqual(ids(got), all[:3]) {
		t.Fatalf("first claim: %v, want %v", ids(got), all[:3])
	}
	for _, a := range got {
		if a.State != outbox.Syncing || a.Attempts != 1 || !a.UpdatedAt.Equal(clk.Now()) {
			t.Fatalf("claimed: %+v", a)
		}
	}
	if got := mustClaim(t, db, 100, all[4]); !reflect.DeepEqual(ids(got), all[3:5]) {
		t.Fatalf("claim up to %d: %v", all[4], ids(got))
	}
	// Back to queued with a retry time: still claimable (backoff is the engine's job), in FIFO order.
	retryAt := clk.Now().Add(time.Hour)
	if err := db.Complete(ctx, []outbox.Outcome{{ID: all[1], Error: "timeout", RetryAt: retryAt}}); err != nil {
		t.Fatal(err)
	}
	got = mustClaim(t, db, 100, 0)
	want := append([]int64{all[1]}, all[5:]...)
	if !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("claim all: %v, want %v", ids(got), want)
	}
	if got[0].Attempts != 2 || got[0].NextAttemptAt != nil {
		t.Fatalf("re-claimed: %+v", got[0])
	}
	_, hist := mustGet(t, db, all[1])
	var trail []string
	for _, c := range hist {
		trail = append(trail, fmt.Sprintf("%s>%s:%s", c.From, c.To, c.Detail))
	}
	wantTrail := []string{">queued:enqueued", "queued>syncing:attempt 1", "syncing>queued:timeout", "queued>syncing:attempt 2"}
	if !reflect.DeepEqual(trail, wantTrail) {
		t.Fatalf("history %q, want %q", trail, wantTrail)
	}
	if got := mustClaim(t, db, 100, 0); len(got) != 0 {
		t.Fatalf("claim of an empty queue: %v", ids(got))
	}
	if id, err := db.MaxQueuedID(ctx); err != nil || id != 0 {
		t.Fatalf("MaxQueuedID = %d, %v; want 0", id, err)
	}
}

func TestComplete(t *testing.T) {
	clk := newClock()
	db, rec := openRec(t, Options{Now: clk.Now})
	for i := 0; i < 5; i++ {
		mustEnqueue(t, db)
	}
	c := mustClaim(t, db, 5, 0)
	clk.Advance(time.Minute)
	retryAt := clk.Now().Add(30 * time.Second)
	rec.take()

	// All or nothing: one action that is not syncing fails the whole call.
	queued := mustEnqueue(t, db)
	rec.take()
	err := db.Complete(ctx, []outbox.Outcome{{ID: c[0].ID, Status: outbox.Applied}, {ID: queued.ID, Status: outbox.Applied}})
	var te *outbox.TransitionError
	if !errors.As(err, &te) || te.ID != queued.ID || te.From != outbox.Queued || te.To != outbox.Synced {
		t.Fatalf("err = %v, want TransitionError for %d", err, queued.ID)
	}
	if a, _ := mustGet(t, db, c[0].ID); a.State != outbox.Syncing {
		t.Fatalf("half-applied: %s", a.State)
	}
	if err := db.Complete(ctx, []outbox.Outcome{{ID: c[0].ID, Status: "weird"}}); err == nil {
		t.Fatal("unknown status accepted")
	}
	// The same id twice: the second would move a synced action.
	if err := db.Complete(ctx, []outbox.Outcome{{ID: c[0].ID, Status: outbox.Applied}, {ID: c[0].ID, Status: outbox.Applied}}); !errors.As(err, &te) {
		t.Fatalf("duplicate outcome: %v", err)
	}
	if calls := rec.take(); len(calls) != 0 {
		t.Fatalf("OnChange after failed Complete: %v", calls)
	}

	err = db.Complete(ctx, []outbox.Outcome{
		{ID: c[4].ID, Status: outbox.Applied},
		{ID: c[1].ID, Status: outbox.Duplicate},
		{ID: c[2].ID, Status: outbox.Rejected, Error: "invalid note"},
		{ID: c[3].ID, Error: "503 Service Unavailable", RetryAt: retryAt},
		{ID: c[0].ID, Error: "connection refused"},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	get := func(i int) outbox.Action { a, _ := mustGet(t, db, c[i].ID); return a }
	for _, i := range []int{1, 4} {
		a := get(i)
		if a.State != outbox.Synced || a.SyncedAt == nil || !a.SyncedAt.Equal(now) || a.LastError != "" || a.NextAttemptAt != nil {
			t.Errorf("synced action: %+v", a)
		}
	}
	if a := get(2); a.State != outbox.Failed || a.LastError != "invalid note" || a.SyncedAt != nil {
		t.Errorf("rejected action: %+v", a)
	}
	if a := get(3); a.State != outbox.Queued || a.LastError != "503 Service Unavailable" || a.NextAttemptAt == nil || !a.NextAttemptAt.Equal(retryAt) || a.Attempts != 1 {
		t.Errorf("transient failure: %+v", a)
	}
	if a := get(0); a.State != outbox.Queued || a.NextAttemptAt != nil || a.LastError != "connection refused" {
		t.Errorf("transient failure without retry time: %+v", a)
	}
	_, hist := mustGet(t, db, c[2].ID)
	if last := hist[len(hist)-1]; last.From != outbox.Syncing || last.To != outbox.Failed || !strings.Contains(last.Detail, "invalid note") || !last.At.Equal(now) {
		t.Errorf("history: %+v", last)
	}
	calls := rec.take()
	if len(calls) != 1 || !reflect.DeepEqual(ids(calls[0]), ids(c)) {
		t.Fatalf("OnChange: %v", calls)
	}
	wantStates := []outbox.State{outbox.Queued, outbox.Synced, outbox.Failed, outbox.Queued, outbox.Synced}
	for i, a := range calls[0] {
		if a.State != wantStates[i] {
			t.Errorf("OnChange action %d: %s, want %s", a.ID, a.State, wantStates[i])
		}
	}
	// Retry starts the attempts over and clears the retry time.
	a, err := db.Retry(ctx, c[2].ID)
	if err != nil || a.State != outbox.Queued || a.Attempts != 0 || a.NextAttemptAt != nil {
		t.Fatalf("Retry = %+v, %v", a, err)
	}
	if err := db.Complete(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverSyncing(t *testing.T) {
	db, rec := openRec(t, Options{})
	for i := 0; i < 5; i++ {
		mustEnqueue(t, db)
	}
	claimed := mustClaim(t, db, 3, 0)
	rec.take()
	n, err := db.RecoverSyncing(ctx)
	if err != nil || n != 3 {
		t.Fatalf("RecoverSyncing = %d, %v; want 3", n, err)
	}
	for _, c := range claimed {
		a, hist := mustGet(t, db, c.ID)
		last := hist[len(hist)-1]
		if a.State != outbox.Queued || a.Attempts != 1 || last.From != outbox.Syncing || last.To != outbox.Queued || last.Detail != "recovered after restart" {
			t.Fatalf("recovered: %+v, %+v", a, last)
		}
	}
	if calls := rec.take(); len(calls) != 1 || !reflect.DeepEqual(ids(calls[0]), ids(claimed)) {
		t.Fatalf("OnChange: %v", calls)
	}
	if n, err := db.RecoverSyncing(ctx); err != nil || n != 0 {
		t.Fatalf("second RecoverSyncing = %d, %v", n, err)
	}
	if got := mustClaim(t, db, 10, 0); len(got) != 5 || got[0].ID != claimed[0].ID {
		t.Fatalf("claim after recovery: %v", ids(got))
	}
}

func TestCancelAllQueued(t *testing.T) {
	db := mustOpen(t)
	var qs []int64
	for i := 0; i < 4; i++ {
		qs = append(qs, mustEnqueue(t, db).ID)
	}
	syncing := mustClaim(t, db, 1, 0)[0]
	n, err := db.CancelAllQueued(ctx)
	if err != nil || n != 3 {
		t.Fatalf("CancelAllQueued = %d, %v; want 3", n, err)
	}
	if a, _ := mustGet(t, db, syncing.ID); a.State != outbox.Syncing {
		t.Fatalf("syncing action cancelled")
	}
	for _, id := range qs[1:] {
		a, hist := mustGet(t, db, id)
		if a.State != outbox.Cancelled || hist[len(hist)-1].Detail != "cancelled by user" {
			t.Fatalf("%+v %+v", a, hist)
		}
	}
	if n, err := db.CancelAllQueued(ctx); err != nil || n != 0 {
		t.Fatalf("again: %d, %v", n, err)
	}
}

func TestPrune(t *testing.T) {
	clk := newClock()
	db := mustOpen(t, Options{Now: clk.Now})
	// Old: changed at T0; recent: changed at T0+2h.
	var old, recent []outbox.Action
	for range outbox.States {
		old = append(old, mustEnqueue(t, db))
		recent = append(recent, mustEnqueue(t, db))
	}
	all := mustClaim(t, db, 100, 0)
	if len(all) != 2*len(outbox.States) {
		t.Fatal("claim")
	}
	move := func(a outbox.Action, to outbox.State) {
		t.Helper()
		var err error
		switch to {
		case outbox.Synced:
			err = db.Complete(ctx, []outbox.Outcome{{ID: a.ID, Status: outbox.Applied}})
		case outbox.Failed:
			err = db.Complete(ctx, []outbox.Outcome{{ID: a.ID, Status: outbox.Rejected}})
		case outbox.Queued:
			err = db.Complete(ctx, []outbox.Outcome{{ID: a.ID}})
		case outbox.Cancelled:
			if err = db.Complete(ctx, []outbox.Outcome{{ID: a.ID}}); err == nil {
				_, err = db.Cancel(ctx, a.ID)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range outbox.States {
		move(old[i], s)
	}
	clk.Advance(2 * time.Hour)
	for i, s := range outbox.States {
		move(recent[i], s)
	}
	n, err := db.Prune(ctx, clk.Now().Add(-time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	for i, s := range outbox.States {
		_, _, err := db.Get(ctx, old[i].ID)
		gone := s == outbox.Synced || s == outbox.Cancelled
		if gone != errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("old %s action: err = %v", s, err)
		}
		if _, _, err := db.Get(ctx, recent[i].ID); err != nil {
			t.Errorf("recent %s action: %v", s, err)
		}
	}
	orphans := queryInt(t, db, `SELECT count(*) FROM history WHERE action_id NOT IN (SELECT id FROM actions)`)
	if orphans != 0 {
		t.Fatalf("%d history rows left behind", orphans)
	}
	// Ids are never reused, even after the newest rows are pruned.
	last := recent[len(recent)-1].ID // the newest action, cancelled
	if last != queryInt(t, db, `SELECT max(id) FROM actions`) {
		t.Fatal("test setup: the last recent action is not the newest")
	}
	clk.Advance(time.Hour)
	if n, err := db.Prune(ctx, clk.Now()); err != nil || n != 2 {
		t.Fatalf("second Prune = %d, %v; want 2", n, err)
	}
	if a := mustEnqueue(t, db); a.ID <= last {
		t.Fatalf("id %d reused (last was %d)", a.ID, last)
	}
}

func TestListPaging(t *testing.T) {
	db := mustOpen(t)
	var all []int64
	for i := 0; i < 25; i++ {
		a := mustEnqueue(t, db)
		all = append(all, a.ID)
		if i%3 == 0 {
			if _, err := db.Cancel(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	rev := func(xs []int64) []int64 {
		out := make([]int64, len(xs))
		for i, x := range xs {
			out[len(xs)-1-i] = x
		}
		return out
	}
	newestFirst := rev(all)
	var got []int64
	q := outbox.ListQuery{Limit: 10}
	var cursors []int64
	for {
		p, err := db.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(p.Actions)...)
		cursors = append(cursors, p.Next)
		if p.Next == 0 {
			break
		}
		if p.Next != p.Actions[len(p.Actions)-1].ID {
			t.Fatalf("Next = %d, last id %d", p.Next, p.Actions[len(p.Actions)-1].ID)
		}
		q.Before = p.Next
	}
	if !reflect.DeepEqual(got, newestFirst) || len(cursors) != 3 {
		t.Fatalf("paged ids %v (cursors %v), want %v", got, cursors, newestFirst)
	}
	// State filter with paging.
	var cancelled []int64
	for i := len(all) - 1; i >= 0; i-- {
		if i%3 == 0 {
			cancelled = append(cancelled, all[i])
		}
	}
	p1, err := db.List(ctx, outbox.ListQuery{State: outbox.Cancelled, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := db.List(ctx, outbox.ListQuery{State: outbox.Cancelled, Limit: 5, Before: p1.Next})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(append(ids(p1.Actions), ids(p2.Actions)...), cancelled) || p2.Next != 0 {
		t.Fatalf("cancelled pages %v %v (next %d), want %v", ids(p1.Actions), ids(p2.Actions), p2.Next, cancelled)
	}
	// A page that ends exactly at the last row has no next cursor.
	p, err := db.List(ctx, outbox.ListQuery{State: outbox.Queued, Limit: 16})
	if err != nil || len(p.Actions) != 16 || p.Next != 0 {
		t.Fatalf("exact page: %d actions, next %d, %v", len(p.Actions), p.Next, err)
	}
	// Empty results are an empty list, not nil.
	p, err = db.List(ctx, outbox.ListQuery{State: outbox.Failed})
	if err != nil || p.Actions == nil || len(p.Actions) != 0 || p.Next != 0 {
		t.Fatalf("empty page: %+v, %v", p, err)
	}
	var inv *outbox.InvalidError
	if _, err := db.List(ctx, outbox.ListQuery{State: "bogus"}); !errors.As(err, &inv) {
		t.Fatalf("bad state: %v", err)
	}
}

func TestListLimits(t *testing.T) {
	db := mustOpen(t)
	bulkInsert(t, db, 1200)
	for _, tc := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {7, 7}, {1000, 1000}, {5000, 1000}} {
		p, err := db.List(ctx, outbox.ListQuery{Limit: tc.limit})
		if err != nil || len(p.Actions) != tc.want || p.Next == 0 {
			t.Errorf("Limit %d: %d actions, next %d, %v; want %d", tc.limit, len(p.Actions), p.Next, err, tc.want)
		}
	}
}

// TestQueryPlans checks that the hot queries are index searches, never a
// scan of the table or a sort, so they stay fast however large the outbox.
// It explains the very constants the code runs.
func TestQueryPlans(t *testing.T) {
	db := mustOpen(t)
	queries := []struct {
		name string
		sql  string
		args []any
	}{
		{"listSQL", listSQL, []any{1, 1}},
		{"listByStateSQL", listByStateSQL, []any{"queued", 1, 1}},
		{"claimSQL", claimSQL, []any{"2006-01-02T15:04:05Z", 1, 1}},
		{"maxQueuedIDSQL", maxQueuedIDSQL, nil},
		{"historySQL", historySQL, []any{1}},
		{"actionByKeySQL", actionByKeySQL, []any{"k"}},
		{"oldestQueuedSQL", oldestQueuedSQL, nil},
		{"exportSQL", exportSQL, []any{0, "", 1}},
		{"exportByStateSQL", exportByStateSQL, []any{"failed", 0, "", 1}},
		{"exportHistorySQL", exportHistorySQL, []any{1, 2}},
		// No code runs this: it is the lookup SQLite makes for the history's
		// ON DELETE CASCADE when Prune deletes actions.
		{"cascade delete of history", `DELETE FROM history WHERE action_id = ?`, []any{1}},
	}
	for _, q := range queries {
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		rows.Close()
		joined := strings.Join(plan, " | ")
		if !strings.Contains(joined, "SEARCH") || strings.Contains(joined, "SCAN") || strings.Contains(joined, "TEMP B-TREE") {
			t.Errorf("%s: query %q\nplan: %s", q.name, q.sql, joined)
		}
	}
}

func TestCounts(t *testing.T) {
	db := mustOpen(t)
	c, err := db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := outbox.Counts{outbox.Queued: 0, outbox.Syncing: 0, outbox.Synced: 0, outbox.Failed: 0, outbox.Cancelled: 0}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("empty counts %v", c)
	}
	setStates(t, db, outbox.Queued, outbox.Queued, outbox.Synced, outbox.Failed, outbox.Failed, outbox.Failed)
	c, err = db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = outbox.Counts{outbox.Queued: 2, outbox.Syncing: 0, outbox.Synced: 1, outbox.Failed: 3, outbox.Cancelled: 0}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("counts %v, want %v", c, want)
	}
}

// TestOnChangeAfterCommit checks that the listener sees committed data
// (it reads it back from another connection) and the right states, and is
// not called for a write that fails.
func TestOnChangeAfterCommit(t *testing.T) {
	var db *DB
	var mu sync.Mutex
	var seen []string
	var problems []string
	onChange := func(acts []outbox.Action) {
		for _, a := range acts {
			stored, _, err := db.Get(ctx, a.ID)
			mu.Lock()
			if err != nil || stored.State != a.State || !stored.UpdatedAt.Equal(a.UpdatedAt) {
				problems = append(problems, fmt.Sprintf("action %d: notified %s, stored %s (%v)", a.ID, a.State, stored.State, err))
			}
			seen = append(seen, fmt.Sprintf("%d:%s", a.ID, a.State))
			mu.Unlock()
		}
	}
	db = mustOpen(t, Options{OnChange: onChange})
	a := mustEnqueue(t, db)
	b := mustEnqueue(t, db)
	db.Enqueue(ctx, newAction(a.Key)) // already stored: no change
	mustClaim(t, db, 1, 0)
	db.Complete(ctx, []outbox.Outcome{{ID: a.ID, Status: outbox.Rejected, Error: "no"}})
	db.Retry(ctx, b.ID) // not failed: TransitionError, no change
	db.Retry(ctx, a.ID)
	db.Cancel(ctx, b.ID)
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		fmt.Sprintf("%d:queued", a.ID), fmt.Sprintf("%d:queued", b.ID),
		fmt.Sprintf("%d:syncing", a.ID), fmt.Sprintf("%d:failed", a.ID),
		fmt.Sprintf("%d:queued", a.ID), fmt.Sprintf("%d:cancelled", b.ID),
	}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("notified %v, want %v", seen, want)
	}
	if len(problems) > 0 {
		t.Fatal(strings.Join(problems, "\n"))
	}
}

func TestCloseWhileEnqueueing(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok []string
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key := testsupport.NewKey()
				_, _, err := db.Enqueue(ctx, newAction(key))
				if errors.Is(err, outbox.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ok = append(ok, key)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Every method says ErrClosed.
	if _, _, err := db.Get(ctx, 1); !errors.Is(err, outbox.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := db.Claim(ctx, 1, 0); !errors.Is(err, outbox.ErrClosed) {
		t.Errorf("Claim after Close: %v", err)
	}
	if _, err := db.EnqueueBatch(ctx, []outbox.NewAction{newAction(testsupport.NewKey())}); !errors.Is(err, outbox.ErrClosed) {
		t.Errorf("EnqueueBatch after Close: %v", err)
	}
	// Every acknowledged enqueue is there after reopening.
	db = mustOpenAt(t, path, Options{})
	if len(ok) == 0 {
		t.Fatal("no enqueue succeeded before Close")
	}
	c, err := db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c[outbox.Queued] < len(ok) {
		t.Fatalf("%d queued after reopen, %d acknowledged", c[outbox.Queued], len(ok))
	}
	for _, k := range ok[len(ok)-10:] {
		if _, created, err := db.Enqueue(ctx, newAction(k)); err != nil || created {
			t.Fatalf("acknowledged key %s: created=%v err=%v", k, created, err)
		}
	}
	db.Close()
	// No goroutine left behind (allow the runtime a moment to reap).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines, %d before", n, before)
	}
}

func TestAClaimLeavesTheWriterDurable(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	if _, _, err := db.Enqueue(ctx, outbox.NewAction{Key: testsupport.NewKey(), Type: "m", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if acts, err := db.Claim(ctx, 10, 0); err != nil || len(acts) != 1 {
		t.Fatalf("Claim = %v, %v", acts, err)
	}
	var mode int
	if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != 2 || db.notDurable {
		t.Fatalf("after a claim the writer runs with synchronous=%d (notDurable %v), want 2 (FULL): an enqueue acknowledged now must be on disk", mode, db.notDurable)
	}
}

func TestEnqueueClaimed(t *testing.T) {
	db, rec := openRec(t, Options{})
	older := mustEnqueue(t, db)
	a, created, err := db.Enqueue(ctx, outbox.NewAction{Key: testsupport.NewKey(), Type: "http", Payload: json.RawMessage(`{}`), Claimed: true})
	if err != nil || !created {
		t.Fatalf("Enqueue claimed = %v, %v", created, err)
	}
	if a.State != outbox.Syncing || a.Attempts != 1 {
		t.Fatalf("returned %s attempt %d, want syncing attempt 1", a.State, a.Attempts)
	}
	got, hist := mustGet(t, db, a.ID)
	if got.State != outbox.Syncing || got.Attempts != 1 || len(hist) != 2 || hist[1].From != outbox.Queued || hist[1].To != outbox.Syncing || hist[1].Detail != "attempt 1" {
		t.Fatalf("stored %+v, history %+v: want syncing, attempt 1, after enqueued", got, hist)
	}
	if calls := rec.take(); len(calls) != 2 || calls[1][0].State != outbox.Syncing {
		t.Fatalf("OnChange: %v, want the claimed action published as syncing", calls)
	}
	if claimed := mustClaim(t, db, 10, 0); len(claimed) != 1 || claimed[0].ID != older.ID {
		t.Fatalf("Claim = %v, want only the older queued action: the claimed one is taken", ids(claimed))
	}
	// A crash before its outcome is recorded: it is queued again at start.
	if n, err := db.RecoverSyncing(ctx); err != nil || n != 2 {
		t.Fatalf("RecoverSyncing = %d, %v; want 2", n, err)
	}
	if got, _ := mustGet(t, db, a.ID); got.State != outbox.Queued {
		t.Fatalf("after recovery: %s, want queued", got.State)
	}
}

// An action that keeps failing keeps a bounded history: its creation and
// its latest attempts, whole, however long the outage.
func TestTheHistoryOfAnActionThatKeepsFailingIsBounded(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	a := mustEnqueue(t, db)
	answer := strings.Repeat("maintenance page ", 4<<10/17)
	const attempts = 205
	for n := 1; n <= attempts; n++ {
		got, err := db.Claim(ctx, 1, 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("claim %d = %v, %v", n, got, err)
		}
		if err := db.Complete(ctx, []outbox.Outcome{{ID: a.ID, Error: fmt.Sprintf("503 attempt %d", n), Detail: answer}}); err != nil { // back to the queue
			t.Fatalf("complete %d: %v", n, err)
		}
	}
	got, hist, err := db.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != attempts || got.State != outbox.Queued {
		t.Fatalf("after %d failed attempts the action is %s with %d attempts", attempts, got.State, got.Attempts)
	}
	if max := 1 + 2*(HistoryAttempts+historyTrimEvery); len(hist) > max || len(hist) < 1+2*HistoryAttempts {
		t.Fatalf("history has %d rows after %d attempts, want between %d and %d", len(hist), attempts, 1+2*HistoryAttempts, max)
	}
	if hist[0].From != "" || hist[0].To != outbox.Queued {
		t.Errorf("first history row %+v, want the creation", hist[0])
	}
	last := hist[len(hist)-1]
	if last.From != outbox.Syncing || last.To != outbox.Queued || !strings.HasPrefix(last.Detail, fmt.Sprintf("503 attempt %d\n", attempts)) || !strings.Contains(last.Detail, answer) {
		t.Errorf("last history row %.80q, want the latest attempt with its whole answer", last.Detail)
	}
	// The kept rows are the latest attempts, in order, with no gap.
	for i, c := range hist[len(hist)-2*HistoryAttempts:] {
		if i%2 == 1 {
			n := attempts - HistoryAttempts + 1 + i/2
			if !strings.HasPrefix(c.Detail, fmt.Sprintf("503 attempt %d\n", n)) {
				t.Fatalf("kept row %d is %.30q, want attempt %d", i, c.Detail, n)
			}
		}
	}
}
