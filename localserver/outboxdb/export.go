package outboxdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"synctray/localserver/outbox"
)

// Export and backlog queries; TestQueryPlans explains them.
const (
	// oldestQueuedSQL is when the oldest queued action (the head of the
	// FIFO queue) was created (OldestQueuedAt).
	oldestQueuedSQL = `SELECT created_at FROM actions WHERE state = 'queued' ORDER BY id LIMIT 1`
	// exportSQL and exportByStateSQL are one page of actions, oldest first,
	// after an id and created at or after a time (ExportPage).
	exportSQL        = `SELECT ` + actionCols + ` FROM actions WHERE id > ? AND created_at >= ? ORDER BY id LIMIT ?`
	exportByStateSQL = `SELECT ` + actionCols + ` FROM actions WHERE state = ? AND id > ? AND created_at >= ? ORDER BY id LIMIT ?`
	// exportHistorySQL is the history of the actions in an id range, in
	// order (ExportPage).
	exportHistorySQL = `SELECT action_id, at, from_state, to_state, detail FROM history WHERE action_id BETWEEN ? AND ? ORDER BY action_id, id`
)

// OldestQueuedAt returns when the oldest queued action was created, and
// false when none is queued. It reads one row through the (state, id)
// index, whatever the outbox's size.
func (db *DB) OldestQueuedAt(ctx context.Context) (_ time.Time, _ bool, err error) {
	defer markStorage(&err)
	if err := db.gate.enter(); err != nil {
		return time.Time{}, false, err
	}
	defer db.gate.leave()
	var s string
	err = db.r.QueryRowContext(ctx, oldestQueuedSQL).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("oldest queued action: %w", err)
	}
	t, err := parseTime(s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("oldest queued action: %w", err)
	}
	return t, true, nil
}

// ExportQuery selects a page of actions for an export, oldest first.
type ExportQuery struct {
	State outbox.State // empty: all states
	Since time.Time    // zero: any; else only actions created at or after it
	After int64        // cursor: only actions with id > After
	Limit int          // 0: DefaultExportPage; capped at maxListLimit
}

// DefaultExportPage is how many actions ExportPage reads at once unless
// told otherwise: what an export holds in memory is one page.
const DefaultExportPage = 256

// Exported is one action of an export with its history, oldest change first.
type Exported struct {
	outbox.Action
	History []outbox.Change `json:"history"`
}

// ExportPage returns a page of actions matching q with their histories,
// oldest first, and the cursor of the next page (q.After for the next
// call; 0 at the end). The page and its histories come from one read
// transaction; pages are separate snapshots, so an export of a busy
// outbox may show an action in a state it has since left. Each page reads
// through an index: the whole export reads each row once.
func (db *DB) ExportPage(ctx context.Context, q ExportQuery) (_ []Exported, _ int64, err error) {
	defer markStorage(&err)
	if q.State != "" && !q.State.Valid() {
		return nil, 0, &outbox.InvalidError{Field: "state", Reason: fmt.Sprintf("unknown state %q", q.State)}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultExportPage
	}
	limit = min(limit, maxListLimit)
	since := ""
	if !q.Since.IsZero() {
		since = fmtTime(q.Since)
	}
	if err := db.gate.enter(); err != nil {
		return nil, 0, err
	}
	defer db.gate.leave()
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("export actions: %w", err)
	}
	defer tx.Rollback()
	var rows *sql.Rows
	if q.State == "" {
		rows, err = tx.QueryContext(ctx, exportSQL, q.After, since, limit)
	} else {
		rows, err = tx.QueryContext(ctx, exportByStateSQL, string(q.State), q.After, since, limit)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("export actions: %w", err)
	}
	acts, err := scanActions(rows)
	if err != nil {
		return nil, 0, fmt.Errorf("export actions: %w", err)
	}
	if len(acts) == 0 {
		return nil, 0, nil
	}
	page := make([]Exported, len(acts))
	index := make(map[int64]int, len(acts))
	for i, a := range acts {
		page[i].Action = a
		index[a.ID] = i
	}
	// The id range of the page: with a state filter it may hold other
	// actions' history, which is skipped; ranges of successive pages do
	// not overlap, so an export reads each history row at most once.
	hrows, err := tx.QueryContext(ctx, exportHistorySQL, acts[0].ID, acts[len(acts)-1].ID)
	if err != nil {
		return nil, 0, fmt.Errorf("export history: %w", err)
	}
	defer hrows.Close()
	for hrows.Next() {
		var (
			id           int64
			at, from, to string
			detail       string
		)
		if err := hrows.Scan(&id, &at, &from, &to, &detail); err != nil {
			return nil, 0, fmt.Errorf("export history: %w", err)
		}
		i, ok := index[id]
		if !ok {
			continue
		}
		c := outbox.Change{From: outbox.State(from), To: outbox.State(to), Detail: detail}
		if c.At, err = parseTime(at); err != nil {
			return nil, 0, fmt.Errorf("export history of action %d: %w", id, err)
		}
		page[i].History = append(page[i].History, c)
	}
	if err := hrows.Err(); err != nil {
		return nil, 0, fmt.Errorf("export history: %w", err)
	}
	var next int64
	if len(acts) == limit {
		next = acts[len(acts)-1].ID
	}
	return page, next, nil
}
