package outboxdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"synctray/localserver/outbox"
)

// List page sizes.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// The queries below are constants so that TestQueryPlans explains exactly
// the SQL the code runs.
const (
	// historySQL is the history of one action, oldest change first (Get).
	historySQL = `SELECT at, from_state, to_state, detail FROM history WHERE action_id = ? ORDER BY id`
	// listSQL and listByStateSQL are one page of actions, newest first (List).
	listSQL        = `SELECT ` + actionCols + ` FROM actions WHERE id < ? ORDER BY id DESC LIMIT ?`
	listByStateSQL = `SELECT ` + actionCols + ` FROM actions WHERE state = ? AND id < ? ORDER BY id DESC LIMIT ?`
	// maxQueuedIDSQL is the id of the newest queued action (MaxQueuedID).
	maxQueuedIDSQL = `SELECT id FROM actions WHERE state = 'queued' ORDER BY id DESC LIMIT 1`
	// claimSQL moves the oldest queued actions up to an id to syncing (Claim).
	claimSQL = `UPDATE actions SET state = 'syncing', attempts = attempts + 1, updated_at = ?, next_attempt_at = NULL
	 WHERE id IN (SELECT id FROM actions WHERE state = 'queued' AND id <= ? ORDER BY id LIMIT ?)
	 RETURNING ` + actionCols
)

// Get returns an action and its history, oldest change first. Errors:
// outbox.ErrNotFound.
func (db *DB) Get(ctx context.Context, id int64) (_ outbox.Action, _ []outbox.Change, err error) {
	defer markStorage(&err)
	if err := db.gate.enter(); err != nil {
		return outbox.Action{}, nil, err
	}
	defer db.gate.leave()
	// One read transaction: the action and its history from one snapshot.
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return outbox.Action{}, nil, fmt.Errorf("get action %d: %w", id, err)
	}
	defer tx.Rollback()
	a, err := scanAction(tx.QueryRowContext(ctx, `SELECT `+actionCols+` FROM actions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return outbox.Action{}, nil, fmt.Errorf("action %d: %w", id, outbox.ErrNotFound)
	}
	if err != nil {
		return outbox.Action{}, nil, fmt.Errorf("get action %d: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, historySQL, id)
	if err != nil {
		return outbox.Action{}, nil, fmt.Errorf("get history of action %d: %w", id, err)
	}
	defer rows.Close()
	var hist []outbox.Change
	for rows.Next() {
		var c outbox.Change
		var at, from, to string
		if err := rows.Scan(&at, &from, &to, &c.Detail); err != nil {
			return outbox.Action{}, nil, fmt.Errorf("get history of action %d: %w", id, err)
		}
		if c.At, err = parseTime(at); err != nil {
			return outbox.Action{}, nil, fmt.Errorf("get history of action %d: %w", id, err)
		}
		c.From, c.To = outbox.State(from), outbox.State(to)
		hist = append(hist, c)
	}
	if err := rows.Err(); err != nil {
		return outbox.Action{}, nil, fmt.Errorf("get history of action %d: %w", id, err)
	}
	return a, hist, nil
}

// List returns a page of actions, newest first. It reads at most one
// page (plus one row) through an index, whatever the table's size.
func (db *DB) List(ctx context.Context, q outbox.ListQuery) (_ outbox.Page, err error) {
	defer markStorage(&err)
	if q.State != "" && !q.State.Valid() {
		return outbox.Page{}, &outbox.InvalidError{Field: "state", Reason: fmt.Sprintf("unknown state %q", q.State)}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	if err := db.gate.enter(); err != nil {
		return outbox.Page{}, err
	}
	defer db.gate.leave()
	var rows *sql.Rows
	// One more row than the page tells whether there is a next page.
	if q.State == "" {
		rows, err = db.r.QueryContext(ctx, listSQL, before, limit+1)
	} else {
		rows, err = db.r.QueryContext(ctx, listByStateSQL, string(q.State), before, limit+1)
	}
	if err != nil {
		return outbox.Page{}, fmt.Errorf("list actions: %w", err)
	}
	acts, err := scanActions(rows)
	if err != nil {
		return outbox.Page{}, fmt.Errorf("list actions: %w", err)
	}
	page := outbox.Page{Actions: acts}
	if len(acts) > limit {
		page.Actions = acts[:limit]
		page.Next = acts[limit-1].ID
	}
	if page.Actions == nil {
		page.Actions = []outbox.Action{}
	}
	return page, nil
}

// Counts returns the number of actions in each state; every state is present.
func (db *DB) Counts(ctx context.Context) (_ outbox.Counts, err error) {
	defer markStorage(&err)
	if err := db.gate.enter(); err != nil {
		return nil, err
	}
	defer db.gate.leave()
	counts := make(outbox.Counts, len(outbox.States))
	for _, s := range outbox.States {
		counts[s] = 0
	}
	rows, err := db.r.QueryContext(ctx, `SELECT state, count(*) FROM actions GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count actions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("count actions: %w", err)
		}
		counts[outbox.State(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count actions: %w", err)
	}
	return counts, nil
}

// MaxQueuedID is the id of the newest queued action, 0 if none.
func (db *DB) MaxQueuedID(ctx context.Context) (_ int64, err error) {
	defer markStorage(&err)
	if err := db.gate.enter(); err != nil {
		return 0, err
	}
	defer db.gate.leave()
	var id int64
	err = db.r.QueryRowContext(ctx, maxQueuedIDSQL).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("max queued id: %w", err)
	}
	return id, nil
}

// Cancel moves a queued or failed action to cancelled. Errors:
// outbox.ErrNotFound, *outbox.TransitionError.
func (db *DB) Cancel(ctx context.Context, id int64) (outbox.Action, error) {
	return db.transition(ctx, "cancel", id, []outbox.State{outbox.Queued, outbox.Failed}, outbox.Cancelled, "cancelled by user", "")
}

// Retry moves a failed action back to queued and starts it over: its
// attempts count from 0 again (the bounds on attempts, such as HTTP mode's
// MaxBusyAttempts, give it a whole new round), and its history keeps every
// earlier attempt. Errors: outbox.ErrNotFound, *outbox.TransitionError.
func (db *DB) Retry(ctx context.Context, id int64) (outbox.Action, error) {
	return db.transition(ctx, "retry", id, []outbox.State{outbox.Failed}, outbox.Queued, "retried by user", ", attempts = 0")
}

// transition moves one action from one of the states from to state to
// (clearing its next attempt time, and setting what set says) if the
// state machine allows it.
func (db *DB) transition(ctx context.Context, op string, id int64, from []outbox.State, to outbox.State, detail, set string) (outbox.Action, error) {
	if err := db.gate.enter(); err != nil {
		return outbox.Action{}, err
	}
	defer db.gate.leave()
	var out outbox.Action
	err := db.write(ctx, func(tx *sql.Tx) ([]outbox.Action, error) {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT state FROM actions WHERE id = ?`, id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("action %d: %w", id, outbox.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("%s action %d: %w", op, id, err)
		}
		if !slices.Contains(from, outbox.State(cur)) || !outbox.CanTransition(outbox.State(cur), to) {
			return nil, &outbox.TransitionError{ID: id, From: outbox.State(cur), To: to}
		}
		now := fmtTime(db.stamp())
		a, err := scanAction(tx.QueryRowContext(ctx,
			`UPDATE actions SET state = ?, updated_at = ?, next_attempt_at = NULL`+set+` WHERE id = ? RETURNING `+actionCols,
			string(to), now, id))
		if err != nil {
			return nil, fmt.Errorf("%s action %d: %w", op, id, err)
		}
		if err := addHistory(ctx, tx, id, now, outbox.State(cur), to, detail); err != nil {
			return nil, fmt.Errorf("%s action %d: %w", op, id, err)
		}
		out = a
		return []outbox.Action{a}, nil
	}, nil)
	if err != nil {
		return outbox.Action{}, err
	}
	return out, nil
}

func addHistory(ctx context.Context, tx *sql.Tx, id int64, at string, from, to outbox.State, detail string) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO history (action_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)`,
		id, at, string(from), string(to), detail)
	if err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

// CancelAllQueued cancels every queued action and says how many.
func (db *DB) CancelAllQueued(ctx context.Context) (int, error) {
	n, err := db.moveAll(ctx, outbox.Queued, outbox.Cancelled, "cancelled by user")
	if err != nil {
		return 0, fmt.Errorf("cancel all queued: %w", err)
	}
	return n, nil
}

// RecoverSyncing puts back in the queue every action left syncing by a
// previous run (it may or may not have reached the upstream; the
// idempotency key makes sending it again safe). Call it on start-up,
// before the sync engine runs. It says how many.
func (db *DB) RecoverSyncing(ctx context.Context) (int, error) {
	n, err := db.moveAll(ctx, outbox.Syncing, outbox.Queued, "recovered after restart")
	if err != nil {
		return 0, fmt.Errorf("recover syncing: %w", err)
	}
	return n, nil
}

// moveAll moves every action in state from to state to.
func (db *DB) moveAll(ctx context.Context, from, to outbox.State, detail string) (int, error) {
	if !outbox.CanTransition(from, to) {
		return 0, &outbox.TransitionError{From: from, To: to}
	}
	if err := db.gate.enter(); err != nil {
		return 0, err
	}
	defer db.gate.leave()
	var n int
	err := db.write(ctx, func(tx *sql.Tx) ([]outbox.Action, error) {
		now := fmtTime(db.stamp())
		rows, err := tx.QueryContext(ctx,
			`UPDATE actions SET state = ?, updated_at = ?, next_attempt_at = NULL WHERE state = ? RETURNING `+actionCols,
			string(to), now, string(from))
		if err != nil {
			return nil, err
		}
		acts, err := scanActions(rows)
		if err != nil {
			return nil, err
		}
		if err := addHistories(ctx, tx, acts, now, from, func(outbox.Action) string { return detail }); err != nil {
			return nil, err
		}
		n = len(acts)
		return acts, nil
	}, nil)
	return n, err
}

// addHistories records the change of each action from state from to its
// current state, in one statement.
func addHistories(ctx context.Context, tx *sql.Tx, acts []outbox.Action, at string, from outbox.State, detail func(outbox.Action) string) error {
	if len(acts) == 0 {
		return nil
	}
	rows := make([]historyRow, len(acts))
	for i, a := range acts {
		rows[i] = historyRow{ID: a.ID, To: string(a.State), Detail: detail(a)}
	}
	return insertHistories(ctx, tx, at, from, rows)
}

// historyRow is one history entry to insert.
type historyRow struct {
	ID     int64  `json:"id"`
	To     string `json:"to"`
	Detail string `json:"detail"`
}

// insertHistories inserts many history rows with one statement: the rows
// travel as one JSON array, which costs far less than a statement per row.
func insertHistories(ctx context.Context, tx *sql.Tx, at string, from outbox.State, rows []historyRow) error {
	b, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO history (action_id, at, from_state, to_state, detail)
		 SELECT value ->> '$.id', ?, ?, value ->> '$.to', value ->> '$.detail' FROM json_each(?) ORDER BY key`,
		at, string(from), string(b))
	if err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

// Claim moves up to limit queued actions with id <= maxID (0: any), oldest
// first, to syncing, counting an attempt, and returns them in id order.
// It ignores next_attempt_at: backoff is the sync engine's business.
func (db *DB) Claim(ctx context.Context, limit int, maxID int64) ([]outbox.Action, error) {
	if !outbox.CanTransition(outbox.Queued, outbox.Syncing) {
		return nil, &outbox.TransitionError{From: outbox.Queued, To: outbox.Syncing}
	}
	if limit <= 0 {
		return nil, nil
	}
	if maxID <= 0 {
		maxID = math.MaxInt64
	}
	if err := db.gate.enter(); err != nil {
		return nil, err
	}
	defer db.gate.leave()
	var claimed []outbox.Action
	err := db.writeSync(ctx, false, func(tx *sql.Tx) ([]outbox.Action, error) {
		now := fmtTime(db.stamp())
		rows, err := tx.QueryContext(ctx, claimSQL, now, maxID, limit)
		if err != nil {
			return nil, err
		}
		acts, err := scanActions(rows)
		if err != nil {
			return nil, err
		}
		sortByID(acts)
		if err := addHistories(ctx, tx, acts, now, outbox.Queued, func(a outbox.Action) string {
			return fmt.Sprintf("attempt %d", a.Attempts)
		}); err != nil {
			return nil, err
		}
		claimed = acts
		return acts, nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("claim batch: %w", err)
	}
	// OnChange got the same slice; give the caller its own.
	out := make([]outbox.Action, len(claimed))
	copy(out, claimed)
	return out, nil
}

// outcomeState is where an outcome moves a syncing action.
func outcomeState(s outbox.Status) (outbox.State, bool) {
	switch s {
	case outbox.Applied, outbox.Duplicate:
		return outbox.Synced, true
	case outbox.Rejected:
		return outbox.Failed, true
	case "":
		return outbox.Queued, true
	}
	return "", false
}

// Complete records the outcomes of claimed (syncing) actions in one
// transaction: Applied and Duplicate → synced, Rejected → failed, a
// transient failure (empty Status) → queued with its error and RetryAt.
// If any outcome is not allowed (unknown id: ErrNotFound; action not
// syncing: *outbox.TransitionError) nothing is recorded.
func (db *DB) Complete(ctx context.Context, outcomes []outbox.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	if err := db.gate.enter(); err != nil {
		return err
	}
	defer db.gate.leave()
	err := db.write(ctx, func(tx *sql.Tx) ([]outbox.Action, error) {
		// Check every outcome before changing anything.
		ids := make([]int64, len(outcomes))
		for i, o := range outcomes {
			ids[i] = o.ID
		}
		idsJSON, _ := json.Marshal(ids)
		rows, err := tx.QueryContext(ctx, `SELECT id, state FROM actions WHERE id IN (SELECT value FROM json_each(?))`, string(idsJSON))
		if err != nil {
			return nil, err
		}
		current := make(map[int64]outbox.State, len(outcomes))
		for rows.Next() {
			var id int64
			var st string
			if err := rows.Scan(&id, &st); err != nil {
				rows.Close()
				return nil, err
			}
			current[id] = outbox.State(st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		state := make(map[int64]outbox.State, len(outcomes))
		for _, o := range outcomes {
			to, ok := outcomeState(o.Status)
			if !ok {
				return nil, fmt.Errorf("action %d: unknown outcome status %q", o.ID, o.Status)
			}
			from, seen := state[o.ID]
			if !seen {
				if from, ok = current[o.ID]; !ok {
					return nil, fmt.Errorf("action %d: %w", o.ID, outbox.ErrNotFound)
				}
			}
			if from != outbox.Syncing || !outbox.CanTransition(from, to) {
				return nil, &outbox.TransitionError{ID: o.ID, From: from, To: to}
			}
			state[o.ID] = to
		}

		// Outcomes that change a row the same way are applied together.
		type change struct {
			to       outbox.State
			errText  string
			next     any
			response string // "": keep the stored one
		}
		groups := map[change][]int64{}
		var order []change
		hist := make([]historyRow, 0, len(outcomes))
		for _, o := range outcomes {
			c := change{response: string(o.Response)}
			detail := ""
			switch o.Status {
			case outbox.Applied, outbox.Duplicate:
				c.to, detail = outbox.Synced, string(o.Status)
				if o.Status == outbox.Duplicate {
					detail = "duplicate: the upstream already had it"
				}
			case outbox.Rejected:
				c.to, c.errText, detail = outbox.Failed, o.Error, "rejected"
				if o.Error != "" {
					detail = "rejected: " + o.Error
				}
			default:
				c.to, c.errText, detail = outbox.Queued, o.Error, "will retry"
				if !o.RetryAt.IsZero() {
					c.next = fmtTime(normTime(o.RetryAt))
				}
				if o.Error != "" {
					detail = o.Error
				}
			}
			if o.Detail != "" && o.Detail != o.Error {
				detail += "\n" + o.Detail
			}
			if _, ok := groups[c]; !ok {
				order = append(order, c)
			}
			groups[c] = append(groups[c], o.ID)
			hist = append(hist, historyRow{ID: o.ID, To: string(c.to), Detail: detail})
		}
		ts := fmtTime(db.stamp())
		changed := make([]outbox.Action, 0, len(outcomes))
		for _, c := range order {
			idsJSON, _ := json.Marshal(groups[c])
			var rows *sql.Rows
			var err error
			switch c.to {
			case outbox.Synced:
				rows, err = tx.QueryContext(ctx,
					`UPDATE actions SET state = 'synced', updated_at = ?, synced_at = ?, last_error = '', next_attempt_at = NULL,
					 response = CASE WHEN ? = '' THEN response ELSE ? END
					 WHERE id IN (SELECT value FROM json_each(?)) RETURNING `+actionCols, ts, ts, c.response, c.response, string(idsJSON))
			case outbox.Failed:
				rows, err = tx.QueryContext(ctx,
					`UPDATE actions SET state = 'failed', updated_at = ?, last_error = ?, next_attempt_at = NULL,
					 response = CASE WHEN ? = '' THEN response ELSE ? END
					 WHERE id IN (SELECT value FROM json_each(?)) RETURNING `+actionCols, ts, c.errText, c.response, c.response, string(idsJSON))
			default:
				rows, err = tx.QueryContext(ctx,
					`UPDATE actions SET state = 'queued', updated_at = ?, last_error = ?, next_attempt_at = ?,
					 response = CASE WHEN ? = '' THEN response ELSE ? END
					 WHERE id IN (SELECT value FROM json_each(?)) RETURNING `+actionCols, ts, c.errText, c.next, c.response, c.response, string(idsJSON))
			}
			if err != nil {
				return nil, err
			}
			acts, err := scanActions(rows)
			if err != nil {
				return nil, err
			}
			changed = append(changed, acts...)
		}
		if err := insertHistories(ctx, tx, ts, outbox.Syncing, hist); err != nil {
			return nil, err
		}
		for _, a := range changed {
			// An action that keeps failing (a long outage) would add two
			// rows, up to 4 KiB of answer each, at every attempt, for as
			// long as it lasts: keep its creation and its latest attempts.
			if a.State == outbox.Queued && a.Attempts > HistoryAttempts && a.Attempts%historyTrimEvery == 0 {
				if _, err := tx.ExecContext(ctx, trimHistorySQL, a.ID, 2*HistoryAttempts); err != nil {
					return nil, fmt.Errorf("trim the history of action %d: %w", a.ID, err)
				}
			}
		}
		return changed, nil
	}, nil)
	if err != nil {
		return fmt.Errorf("complete batch: %w", err)
	}
	return nil
}

// HistoryAttempts is how many of an action's latest attempts its history
// keeps (two rows each: claimed, and what came of it), besides its
// creation; an action that keeps failing has its older attempts dropped
// every historyTrimEvery attempts, so its history holds at most
// 1 + 2*(HistoryAttempts+historyTrimEvery) rows. Attempts still counts them
// all.
const (
	HistoryAttempts  = 20
	historyTrimEvery = 10
)

// trimHistorySQL deletes the history rows of action ?1 older than its
// latest ?2, except its creation (from_state ”).
const trimHistorySQL = `DELETE FROM history WHERE action_id = ?1 AND from_state <> '' AND id <
	(SELECT MIN(id) FROM (SELECT id FROM history WHERE action_id = ?1 ORDER BY id DESC LIMIT ?2))`

// Prune deletes the synced and cancelled actions (and their history) last
// updated before olderThan and says how many.
func (db *DB) Prune(ctx context.Context, olderThan time.Time) (int, error) {
	if err := db.gate.enter(); err != nil {
		return 0, err
	}
	defer db.gate.leave()
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) ([]outbox.Action, error) {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM actions WHERE state IN ('synced', 'cancelled') AND updated_at < ?`, fmtTime(olderThan))
		if err != nil {
			return nil, err
		}
		n, err = res.RowsAffected()
		return nil, err
	}, nil)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	return int(n), nil
}

// IntegrityCheck runs PRAGMA integrity_check and returns an error unless
// SQLite answers "ok".
func (db *DB) IntegrityCheck(ctx context.Context) error {
	if err := db.gate.enter(); err != nil {
		return err
	}
	defer db.gate.leave()
	rows, err := db.r.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("integrity check failed: %s", strings.Join(msgs, "; "))
}

func sortByID(acts []outbox.Action) {
	// RETURNING gives rows in no particular order.
	slices.SortFunc(acts, func(a, b outbox.Action) int { return cmpID(a.ID, b.ID) })
}

// CheckWritable commits a small write (16 KiB, removed in the same
// transaction) to tell whether the disk has room again. Errors wrap
// outbox.ErrDiskFull or outbox.ErrCorrupt when SQLite says so.
func (db *DB) CheckWritable(ctx context.Context) error {
	if err := db.gate.enter(); err != nil {
		return err
	}
	defer db.gate.leave()
	err := db.write(ctx, func(tx *sql.Tx) ([]outbox.Action, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO probe (b) VALUES (zeroblob(16384))`); err != nil {
			return nil, err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM probe`)
		return nil, err
	}, nil)
	if err != nil {
		return fmt.Errorf("check outbox is writable: %w", err)
	}
	return nil
}
