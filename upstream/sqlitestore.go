package upstream

import (
	"bytes"
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

// Store is the upstream's durable state. It is safe for concurrent use;
// writes go through a single connection and are serialized.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers

	mu sync.Mutex // serializes Apply, so that publish sees commit order

	subsMu sync.Mutex
	subs   map[*subscription]struct{}
}

// subscription receives events as they are applied. The store closes ch
// when the subscriber falls behind by more than its buffer.
type subscription struct {
	ch chan Event
}

// OpenStore opens (creating if needed, mode 0600) the store at path.
func OpenStore(path string) (*Store, error) {
	db, err := sqlitedb.Open(context.Background(), path, sqlitedb.Options{Migrations: []string{schema}, Readers: 8})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{w: db.W, r: db.R, subs: map[*subscription]struct{}{}}, nil
}

// Close closes the database and every live subscription.
func (s *Store) Close() error {
	s.subsMu.Lock()
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.ch)
	}
	s.subsMu.Unlock()
	return errors.Join(s.r.Close(), s.w.Close())
}

// validate returns why an action must be rejected for good, or "".
// Empty keys are handled by Apply.
func validate(a Action) string {
	switch {
	case a.Type == "":
		return "empty type"
	case len(a.Payload) > MaxPayloadBytes:
		return fmt.Sprintf("payload larger than %d bytes", MaxPayloadBytes)
	case !json.Valid(a.Payload):
		return "payload is not valid JSON"
	}
	if p := bytes.TrimLeft(a.Payload, " \t\r\n"); len(p) > 0 && p[0] == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(p, &obj) == nil {
			var msg string
			if raw, ok := obj["_reject"]; ok && json.Unmarshal(raw, &msg) == nil {
				if msg == "" {
					msg = "rejected"
				}
				return msg
			}
		}
	}
	return ""
}

// Apply applies a batch in one transaction and returns one result per
// action, in order. A key seen before (in an earlier batch or earlier in
// this one) gets "duplicate" if it was applied, or "rejected" with its
// original error if it was rejected. An error means nothing was applied.
func (s *Store) Apply(ctx context.Context, actions []Action) ([]Result, error) {
	results := make([]Result, len(actions))
	if len(actions) == 0 {
		return results, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("apply: begin: %w", err)
	}
	defer tx.Rollback()

	// The batch is handled set-wise: one query finds the keys seen
	// before, one statement records the new keys, one inserts the events.
	keys := make([]string, 0, len(actions))
	for _, a := range actions {
		keys = append(keys, a.Key)
	}
	keysJSON, _ := json.Marshal(keys)
	rows, err := tx.QueryContext(ctx, `SELECT key, status, error FROM keys WHERE key IN (SELECT value FROM json_each(?))`, string(keysJSON))
	if err != nil {
		return nil, fmt.Errorf("apply: look up keys: %w", err)
	}
	type verdict struct{ status, msg string }
	seen := make(map[string]verdict, len(actions))
	for rows.Next() {
		var k string
		var v verdict
		if err := rows.Scan(&k, &v.status, &v.msg); err != nil {
			rows.Close()
			return nil, fmt.Errorf("apply: look up keys: %w", err)
		}
		seen[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("apply: look up keys: %w", err)
	}

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
	var applied, dups, rejected int64
	var newKeys []newKey
	var newEvents []newEvent
	var events []Event
	for i, a := range actions {
		res := Result{Key: a.Key}
		v, ok := seen[a.Key]
		switch {
		case a.Key == "": // nothing to remember it by
			res.Status, res.Error = StatusRejected, "empty key"
			rejected++
		case ok && v.status == StatusApplied:
			res.Status = StatusDuplicate
			dups++
		case ok:
			res.Status, res.Error = StatusRejected, v.msg
			rejected++
		default:
			if why := validate(a); why != "" {
				newKeys = append(newKeys, newKey{a.Key, StatusRejected, why})
				seen[a.Key] = verdict{StatusRejected, why}
				res.Status, res.Error = StatusRejected, why
				rejected++
				break
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, a.Payload); err != nil {
				return nil, fmt.Errorf("apply: compact payload: %w", err)
			}
			newKeys = append(newKeys, newKey{a.Key, StatusApplied, ""})
			seen[a.Key] = verdict{StatusApplied, ""}
			newEvents = append(newEvents, newEvent{a.Key, a.Type, buf.String(), formatTime(a.CreatedAt)})
			events = append(events, Event{Key: a.Key, Type: a.Type, Payload: json.RawMessage(buf.Bytes()), AppliedAt: now})
			res.Status = StatusApplied
			applied++
		}
		results[i] = res
	}
	if len(newKeys) > 0 {
		b, _ := json.Marshal(newKeys)
		if _, err := tx.ExecContext(ctx, `INSERT INTO keys (key, status, error, first_seen)
			SELECT value ->> '$.key', value ->> '$.status', value ->> '$.error', ? FROM json_each(?)`, nowText, string(b)); err != nil {
			return nil, fmt.Errorf("apply: record keys: %w", err)
		}
	}
	if len(newEvents) > 0 {
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
		if err != nil || last != first+int64(len(newEvents))-1 {
			return nil, fmt.Errorf("apply: insert events: cursors %d..%d do not match %d events (%v)", first, last, len(newEvents), err)
		}
		for i := range events {
			events[i].Cursor = first + int64(i)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET applied = applied + ?,
		duplicates = duplicates + ?, rejected = rejected + ? WHERE id = 1`, applied, dups, rejected); err != nil {
		return nil, fmt.Errorf("apply: update counters: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("apply: commit: %w", err)
	}
	s.publish(events)
	return results, nil
}

// publish hands freshly committed events to every subscriber without
// blocking; a subscriber whose buffer is full is dropped (its channel
// closed) and must catch up from Events. Called with s.mu held, so
// subscribers see events in cursor order.
func (s *Store) publish(events []Event) {
	if len(events) == 0 {
		return
	}
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for sub := range s.subs {
		for _, e := range events {
			select {
			case sub.ch <- e:
				continue
			default:
			}
			delete(s.subs, sub)
			close(sub.ch)
			break
		}
	}
}

// subscribe registers a subscriber with a buffer of n events. Events
// committed before the call may or may not be delivered: callers catch up
// from Events after subscribing and skip cursors they have seen.
func (s *Store) subscribe(n int) *subscription {
	sub := &subscription{ch: make(chan Event, n)}
	s.subsMu.Lock()
	s.subs[sub] = struct{}{}
	s.subsMu.Unlock()
	return sub
}

// unsubscribe removes sub; it is a no-op if the store already dropped it.
func (s *Store) unsubscribe(sub *subscription) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.ch)
	}
}

// Events returns up to limit events with cursor > after, in cursor order.
// limit <= 0 means DefaultLimit; it is capped at MaxLimit.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
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

// Stats returns the persisted counters.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.r.QueryRowContext(ctx, `SELECT applied, duplicates, rejected FROM counters WHERE id = 1`).
		Scan(&st.Applied, &st.Duplicates, &st.Rejected)
	if err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	return st, nil
}

// AppliedKeys returns every applied key, in apply order.
func (s *Store) AppliedKeys(ctx context.Context) ([]string, error) {
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

// IntegrityCheck runs PRAGMA integrity_check and fails unless it says "ok".
func (s *Store) IntegrityCheck(ctx context.Context) error {
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
