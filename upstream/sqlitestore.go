package upstream

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"synctray/internal/sqlitedb"
)

// schema is migration 1 (PRAGMA user_version 1), run by sqlitedb.Open:
// keys remembers every key ever seen with its final verdict, events
// holds the applied actions in apply order (cursor), counters holds Stats.
const schema = `
CREATE TABLE keys (
	key        TEXT PRIMARY KEY,
	status     TEXT NOT NULL CHECK (status IN ('applied', 'rejected')),
	error      TEXT NOT NULL DEFAULT '',
	first_seen TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
	cursor     INTEGER PRIMARY KEY AUTOINCREMENT,
	key        TEXT NOT NULL UNIQUE REFERENCES keys(key),
	type       TEXT NOT NULL,
	payload    TEXT NOT NULL,
	created_at TEXT NOT NULL,
	applied_at TEXT NOT NULL
);
CREATE TABLE counters (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	applied    INTEGER NOT NULL,
	duplicates INTEGER NOT NULL,
	rejected   INTEGER NOT NULL
);
INSERT INTO counters (id, applied, duplicates, rejected) VALUES (1, 0, 0, 0);
`

// timeLayout is fixed-width UTC so that stored timestamps sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) { return time.Parse(timeLayout, s) }

// SQLiteStore is the Store of one upstream process: a SQLite file in its
// data dir. Writes go through a single connection and are serialized.
type SQLiteStore struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers

	mu  sync.Mutex // serializes Apply, so that publish sees commit order
	hub Hub
}

var _ Store = (*SQLiteStore)(nil)

// OpenStore opens (creating if needed, mode 0600) the SQLite store at
// path. Errors wrap ErrNewerSchema for a database a newer synctray wrote.
func OpenStore(path string) (*SQLiteStore, error) {
	db, err := sqlitedb.Open(context.Background(), path, sqlitedb.Options{Migrations: []string{schema}, Readers: 8})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &SQLiteStore{w: db.W, r: db.R}, nil
}

// Close closes the database and every live subscription.
func (s *SQLiteStore) Close() error {
	s.hub.Close()
	return errors.Join(s.r.Close(), s.w.Close())
}

// Subscribe implements Store.
func (s *SQLiteStore) Subscribe(buffer int) (<-chan Event, func()) { return s.hub.Subscribe(buffer) }

// Apply implements Store: the batch is handled set-wise, one query finds
// the keys seen before, one statement records the new keys, one inserts
// the events.
func (s *SQLiteStore) Apply(ctx context.Context, actions []Action) ([]Result, error) {
	if len(actions) == 0 {
		return []Result{}, nil
	}
	plan := NewPlan(actions)
	s.mu.Lock()
	defer s.mu.Unlock()

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("apply: begin: %w", err)
	}
	defer tx.Rollback()

	keysJSON, _ := json.Marshal(plan.KeyNames())
	rows, err := tx.QueryContext(ctx, `SELECT key, status, error FROM keys WHERE key IN (SELECT value FROM json_each(?))`, string(keysJSON))
	if err != nil {
		return nil, fmt.Errorf("apply: look up keys: %w", err)
	}
	stored := map[string]Verdict{}
	for rows.Next() {
		var k string
		var v Verdict
		if err := rows.Scan(&k, &v.Status, &v.Error); err != nil {
			rows.Close()
			return nil, fmt.Errorf("apply: look up keys: %w", err)
		}
		stored[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("apply: look up keys: %w", err)
	}
	out := plan.Resolve(stored)

	type newKey struct {
		Key    string `json:"key"`
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	type newEvent struct {
		Key       string `json:"key"`
		Type      string `json:"type"`
		Payload   string `json:"payload"`
		CreatedAt string `json:"created_at"`
	}
	now := time.Now().UTC()
	nowText := formatTime(now)
	if len(out.New) > 0 {
		newKeys := make([]newKey, len(out.New))
		for i, k := range out.New {
			newKeys[i] = newKey{k.Key, k.Status, k.Error}
		}
		b, _ := json.Marshal(newKeys)
		if _, err := tx.ExecContext(ctx, `INSERT INTO keys (key, status, error, first_seen)
			SELECT value ->> '$.key', value ->> '$.status', value ->> '$.error', ? FROM json_each(?)`, nowText, string(b)); err != nil {
			return nil, fmt.Errorf("apply: record keys: %w", err)
		}
	}
	events := make([]Event, len(out.Applied))
	if len(out.Applied) > 0 {
		newEvents := make([]newEvent, len(out.Applied))
		for i, k := range out.Applied {
			newEvents[i] = newEvent{k.Key, k.Type, string(k.Payload), formatTime(k.CreatedAt)}
			events[i] = Event{Key: k.Key, Type: k.Type, Payload: k.Payload, AppliedAt: now}
		}
		b, _ := json.Marshal(newEvents)
		// Inserted in batch order (ORDER BY key, the array index), so
		// cursors follow it: the first new event gets the lowest cursor.
		var first int64
		err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + 1`).Scan(&first)
		if err != nil {
			return nil, fmt.Errorf("apply: next cursor: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO events (key, type, payload, created_at, applied_at)
			SELECT value ->> '$.key', value ->> '$.type', value ->> '$.payload', value ->> '$.created_at', ?
			FROM json_each(?) ORDER BY key`, nowText, string(b))
		if err != nil {
			return nil, fmt.Errorf("apply: insert events: %w", err)
		}
		last, err := res.LastInsertId()
		if err != nil || last != first+int64(len(events))-1 {
			return nil, fmt.Errorf("apply: insert events: cursors %d..%d do not match %d events (%v)", first, last, len(events), err)
		}
		for i := range events {
			events[i].Cursor = first + int64(i)
		}
	}
	d := out.Delta
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET applied = applied + ?,
		duplicates = duplicates + ?, rejected = rejected + ? WHERE id = 1`, d.Applied, d.Duplicates, d.Rejected); err != nil {
		return nil, fmt.Errorf("apply: update counters: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("apply: commit: %w", err)
	}
	// Still under s.mu: subscribers see cursor order.
	s.hub.Publish(events)
	return out.Results, nil
}

// Events implements Store.
func (s *SQLiteStore) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	limit = EventLimit(limit)
	rows, err := s.r.QueryContext(ctx, `SELECT cursor, key, type, payload, applied_at
		FROM events WHERE cursor > ? ORDER BY cursor LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	events := []Event{}
	for rows.Next() {
		var e Event
		var payload, at string
		if err := rows.Scan(&e.Cursor, &e.Key, &e.Type, &payload, &at); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		e.Payload = json.RawMessage(payload)
		if e.AppliedAt, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("event %d: parse applied_at: %w", e.Cursor, err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return events, nil
}

// Stats implements Store: the persisted counters.
func (s *SQLiteStore) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.r.QueryRowContext(ctx, `SELECT applied, duplicates, rejected FROM counters WHERE id = 1`).
		Scan(&st.Applied, &st.Duplicates, &st.Rejected)
	if err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	return st, nil
}

// AppliedKeys implements Store.
func (s *SQLiteStore) AppliedKeys(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key FROM events ORDER BY cursor`)
	if err != nil {
		return nil, fmt.Errorf("query applied keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("scan applied key: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query applied keys: %w", err)
	}
	return keys, nil
}

// Ping implements Store: it reads the counters row, so that the file,
// not only the connection, answers.
func (s *SQLiteStore) Ping(ctx context.Context) error {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT applied FROM counters WHERE id = 1`).Scan(&n); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// IntegrityCheck implements Store: PRAGMA integrity_check must say "ok".
func (s *SQLiteStore) IntegrityCheck(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("integrity check: %s", strings.Join(problems, "; "))
	}
	return nil
}
