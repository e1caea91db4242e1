// Package protocol is synctray's upstream protocol v1: its wire types and
// limits, and the Go client the local host's sync engine uses (Client). It
// holds nothing of the reference server or its store (package upstream),
// so the host imports only this.
//
// Protocol v1 (JSON):
//
//	POST /v1/actions     {"actions":[Action...]} → {"results":[Result...]}
//	GET  /v1/events      ?after=CURSOR&limit=N  → {"events":[Event...],"next":CURSOR}
//	GET  /v1/events/ws   ?after=CURSOR          WebSocket: backlog, then live events
//	GET  /v1/stats       → Stats
//	GET  /healthz        → {"ok":true}; 503 when the database does not answer (no auth, no faults)
//	GET  /metrics        Prometheus text format (the reference server's; not part of v1)
//
// Errors are {"error":{"code":"...","message":"..."}}. When a token is
// configured, /v1/* needs "Authorization: Bearer TOKEN".
package protocol

import (
	"encoding/json"
	"fmt"
	"time"
)

// Action is one user action sent upstream. Key is its idempotency key.
type Action struct {
	Key       string          `json:"key"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	CreatedAt time.Time       `json:"created_at"`
}

// Result is the upstream's answer for one action of a batch.
type Result struct {
	Key    string `json:"key"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Result statuses. Applied and Duplicate both mean the upstream holds the
// action; Rejected is permanent for that key.
const (
	StatusApplied   = "applied"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
)

// Event is an applied action, numbered by Cursor in apply order.
type Event struct {
	Cursor    int64           `json:"cursor"`
	Key       string          `json:"key"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	AppliedAt time.Time       `json:"applied_at"`
}

// Stats counts results since the store was created. Applied is the number
// of events; Duplicates and Rejected count answers (a rejected key sent
// again counts again).
type Stats struct {
	Applied    int64 `json:"applied"`
	Duplicates int64 `json:"duplicates"`
	Rejected   int64 `json:"rejected"`
}

// Protocol limits.
const (
	MaxBodyBytes    = 8 << 20   // request body of POST /v1/actions
	MaxBatch        = 1000      // actions per POST /v1/actions
	MaxPayloadBytes = 256 << 10 // payload of one action
	DefaultLimit    = 100       // events per GET /v1/events by default
	MaxLimit        = 1000      // events per GET /v1/events at most
)

// ActionsRequest is the body of POST /v1/actions.
type ActionsRequest struct {
	Actions []Action `json:"actions"`
}

// ActionsResponse is the answer to POST /v1/actions.
type ActionsResponse struct {
	Results []Result `json:"results"`
	want    []Action // the batch sent, for check
}

// check says what is wrong with an answer to want, "" if nothing.
func (r *ActionsResponse) check() string {
	if r.Results == nil {
		return "no results array"
	}
	if len(r.Results) != len(r.want) {
		return fmt.Sprintf("%d results for %d actions", len(r.Results), len(r.want))
	}
	for i, res := range r.Results {
		if res.Key != r.want[i].Key {
			return fmt.Sprintf("result %d is for another key", i)
		}
		switch res.Status {
		case StatusApplied, StatusDuplicate, StatusRejected:
		default:
			return fmt.Sprintf("result status %.40q is unknown", res.Status)
		}
	}
	return ""
}

// EventsResponse is the answer to GET /v1/events.
type EventsResponse struct {
	Events []Event `json:"events"`
	Next   int64   `json:"next"`
}

// ErrorBody is an error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// EncodedSize is an upper bound of the bytes a in a batch takes on the
// wire (the client does not escape HTML, so the payload goes as stored,
// compacted).
func EncodedSize(a Action) int {
	const fields = len(`{"key":"","type":"","payload":,"created_at":"2006-01-02T15:04:05.999999999+07:00"}`)
	return fields + len(a.Payload) + 6*(len(a.Key)+len(a.Type)) // a string escapes a byte to at most 6
}

// WebSocket timing of /v1/events/ws, shared by the server and the client.
const (
	WSWriteWait = 10 * time.Second
	WSPongWait  = 60 * time.Second
)
