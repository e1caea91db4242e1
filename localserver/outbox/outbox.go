// Package outbox is the domain of synctray's outbox: actions waiting to be
// sent upstream, their states, the legal transitions between them, and the
// errors callers branch on. It does no I/O; storage (outboxdb), the sync
// engine (syncer) and the HTTP API (localserver) are adapters around it.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// State is where an action is in its life.
type State string

// The states of an action. See CanTransition for the edges between them.
const (
	Queued    State = "queued"
	Syncing   State = "syncing"
	Synced    State = "synced"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// States lists every state in display order.
var States = []State{Queued, Syncing, Synced, Failed, Cancelled}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// transitions holds every legal edge of the state machine:
//
//	queued  → syncing → synced
//	syncing → queued     (transient failure, backoff; also crash recovery)
//	syncing → failed     (upstream rejected it for good)
//	failed  → queued     (user retry)
//	queued|failed → cancelled (user)
var transitions = map[State][]State{
	Queued:  {Syncing, Cancelled},
	Syncing: {Synced, Queued, Failed},
	Failed:  {Queued, Cancelled},
}

// CanTransition reports whether an action may move from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Action is one user action kept in the outbox.
type Action struct {
	ID            int64           `json:"id"`
	Key           string          `json:"key"`
	Type          string          `json:"type"`
	Payload       json.RawMessage `json:"payload"`
	State         State           `json:"state"`
	Attempts      int             `json:"attempts"`
	LastError     string          `json:"last_error"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	SyncedAt      *time.Time      `json:"synced_at"`
	// Response is the upstream's last answer (HTTP mode: status, headers,
	// the body's start), as JSON; empty when there is none.
	Response json.RawMessage `json:"response,omitempty"`
	// Summary is one line for people ("POST /todos → 201 Created", a
	// message's text); the host fills it in, the store does not keep it.
	Summary string `json:"summary,omitempty"`
}

// Change is one row of an action's history: a state change with its time
// and a human-readable detail (an error, "user cancelled", ...).
type Change struct {
	At     time.Time `json:"at"`
	From   State     `json:"from"` // empty for the creation entry
	To     State     `json:"to"`
	Detail string    `json:"detail,omitempty"`
}

// NewAction is what a client asks to enqueue.
type NewAction struct {
	Key     string          `json:"key"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	// Claimed stores a new action already claimed for its first attempt
	// (syncing, attempt 1), for a sync engine that sends it at once
	// (syncer.Engine.Reserve). Never set from what a client sends.
	Claimed bool `json:"-"`
}

// Limits on what is accepted into the outbox: only what the upstream can
// take. The payload goes on the wire as stored (not HTML-escaped), so its
// length is what the upstream's 256 KiB limit sees; MaxDepth stays far
// below the 10,000 levels Go's JSON decoder takes, with the levels the
// upstream's request adds around it.
const (
	MaxDepth        = 1000
	MaxPayloadBytes = 256 << 10
	MaxTypeLen      = 128
	MaxKeyLen       = 128
)

// Validate checks a new action's fields. The key must be a UUID in its
// canonical text form; the type must be UTF-8; the payload must be a UTF-8
// JSON value of at most MaxPayloadBytes.
func (n NewAction) Validate() error {
	if n.Key == "" {
		return &InvalidError{Field: "key", Reason: "an Idempotency-Key is required (a UUID, v7 recommended)"}
	}
	if !isUUID(n.Key) {
		return &InvalidError{Field: "key", Reason: fmt.Sprintf("idempotency key %q is not a UUID", truncate(n.Key, 64))}
	}
	if n.Type == "" {
		return &InvalidError{Field: "type", Reason: "type is required"}
	}
	if len(n.Type) > MaxTypeLen {
		return &InvalidError{Field: "type", Reason: fmt.Sprintf("type is longer than %d bytes", MaxTypeLen)}
	}
	if !utf8.ValidString(n.Type) {
		return &InvalidError{Field: "type", Reason: "type is not valid UTF-8"}
	}
	if len(n.Payload) == 0 {
		return &InvalidError{Field: "payload", Reason: "payload is required (any JSON value)"}
	}
	if len(n.Payload) > MaxPayloadBytes {
		return &InvalidError{Field: "payload", Reason: fmt.Sprintf("payload is larger than %d bytes", MaxPayloadBytes), TooLarge: true}
	}
	if !json.Valid(n.Payload) {
		return &InvalidError{Field: "payload", Reason: "payload is not valid JSON"}
	}
	// json.Valid accepts invalid UTF-8 inside strings; the upstream would
	// turn it into U+FFFD, so what it applied would not be what was sent.
	if !utf8.Valid(n.Payload) {
		return &InvalidError{Field: "payload", Reason: "payload is not valid UTF-8"}
	}
	if depth(n.Payload) > MaxDepth {
		return &InvalidError{Field: "payload", Reason: fmt.Sprintf("payload nests deeper than %d levels", MaxDepth)}
	}
	return nil
}

// depth is how deep arrays and objects nest in valid JSON.
func depth(b []byte) int {
	d, most, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			d++
			most = max(most, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return most
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Errors callers branch on.
var (
	// ErrNotFound: no action with that id.
	ErrNotFound = errors.New("action not found")
	// ErrKeyConflict: the idempotency key is stored with a different type or payload.
	ErrKeyConflict = errors.New("idempotency key already used for a different action")
	// ErrClosed: the outbox is closed.
	ErrClosed = errors.New("outbox closed")
	// ErrDiskFull: the disk holding the outbox is full; nothing was written.
	ErrDiskFull = errors.New("disk full")
	// ErrCorrupt: the outbox file is damaged.
	ErrCorrupt = errors.New("outbox file damaged")
)

// InvalidError reports a new action that cannot be accepted.
type InvalidError struct {
	Field    string
	Reason   string
	TooLarge bool
}

func (e *InvalidError) Error() string { return e.Reason }

// TransitionError reports a state change the state machine forbids.
type TransitionError struct {
	ID   int64
	From State
	To   State
}

func (e *TransitionError) Error() string {
	if e.From == e.To {
		return fmt.Sprintf("action %d is already %s", e.ID, e.From)
	}
	verb := map[State]string{Cancelled: "cancelled", Queued: "retried", Syncing: "sent", Synced: "marked synced", Failed: "marked failed"}[e.To]
	why := ""
	switch e.From {
	case Syncing:
		why = ": it is being sent right now"
	case Synced:
		why = ": it has already reached the upstream"
	case Cancelled:
		why = ": it was cancelled"
	case Queued:
		why = ": it is queued"
	}
	return fmt.Sprintf("action %d is %s and cannot be %s%s", e.ID, e.From, verb, why)
}

// ListQuery selects a page of actions, newest first.
type ListQuery struct {
	State  State // empty: all states
	Limit  int   // 0: 50; capped at 1000
	Before int64 // cursor: only actions with id < Before; 0: from the newest
}

// Page is one page of a listing. Next is the cursor of the following page, 0 at the end.
type Page struct {
	Actions []Action `json:"actions"`
	Next    int64    `json:"next_cursor"`
}

// Counts holds the number of actions per state.
type Counts map[State]int

// EnqueueResult is the outcome of enqueuing one action.
type EnqueueResult struct {
	Action  Action
	Created bool  // false: the key was already stored and Action is the stored one
	Err     error // per-action error in a batch (*InvalidError, ErrKeyConflict)
}

// Status is the outcome of sending one action upstream.
type Status string

// Upstream outcomes. Applied and Duplicate both mean the upstream holds it.
const (
	Applied   Status = "applied"
	Duplicate Status = "duplicate"
	Rejected  Status = "rejected"
)

// Outcome is what happened to one claimed action.
type Outcome struct {
	ID     int64
	Status Status // Applied, Duplicate, Rejected; empty: transient failure, back to queued
	Error  string // one line for people: the action's last error
	// Detail is kept on the action's history: the upstream's full answer
	// (status, content type, the body's first 4 KiB) when there is one.
	Detail string
	// Response, when set, replaces the action's stored upstream answer.
	Response json.RawMessage
	// RetryAt is shown as the next attempt time of an action sent back to queued.
	RetryAt time.Time
}

// Store is the durable outbox. Every write publishes the changed actions to
// the store's listener after its commit.
type Store interface {
	// Enqueue stores a new action or returns the one stored under its key
	// (created=false). Errors: *InvalidError, ErrKeyConflict.
	Enqueue(ctx context.Context, n NewAction) (a Action, created bool, err error)
	// EnqueueBatch stores several actions in order in one commit; errors
	// that concern one action are in its result.
	EnqueueBatch(ctx context.Context, ns []NewAction) ([]EnqueueResult, error)
	// Get returns an action and its history. Errors: ErrNotFound.
	Get(ctx context.Context, id int64) (Action, []Change, error)
	List(ctx context.Context, q ListQuery) (Page, error)
	Counts(ctx context.Context) (Counts, error)
	// Cancel moves a queued or failed action to cancelled. Errors: ErrNotFound, *TransitionError.
	Cancel(ctx context.Context, id int64) (Action, error)
	// Retry moves a failed action back to queued. Errors: ErrNotFound, *TransitionError.
	Retry(ctx context.Context, id int64) (Action, error)
	// CancelAllQueued cancels every queued action and says how many.
	CancelAllQueued(ctx context.Context) (int, error)
	// Claim moves up to limit queued actions with id <= maxID (0: any),
	// oldest first, to syncing, counting an attempt, and returns them in order.
	Claim(ctx context.Context, limit int, maxID int64) ([]Action, error)
	// Complete records the outcomes of claimed actions in one commit.
	Complete(ctx context.Context, outcomes []Outcome) error
	// MaxQueuedID is the id of the newest queued action, 0 if none.
	MaxQueuedID(ctx context.Context) (int64, error)
}
