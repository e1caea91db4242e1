// Package upstream owns synctray's reference upstream: the protocol v1 wire
// types, the SQLite store that applies each idempotency key exactly once
// (Store), the HTTP/WebSocket server in front of it with fault injection for
// tests and demos (Server), and the Go client the local host's sync engine
// uses to talk to it (Client).
//
// Protocol v1 (JSON):
//
//	POST /v1/actions     {"actions":[Action...]} → {"results":[Result...]}
//	GET  /v1/events      ?after=CURSOR&limit=N  → {"events":[Event...],"next":CURSOR}
//	GET  /v1/events/ws   ?after=CURSOR          WebSocket: backlog, then live events
//	GET  /v1/stats       → Stats
//	GET  /healthz        → {"ok":true} (no auth, no faults)
//
// Errors are {"error":{"code":"...","message":"..."}}. When a token is
// configured, /v1/* needs "Authorization: Bearer TOKEN". The server answers
// only requests whose Host names it (see Options.AllowedHosts) and that no
// web page made (no Origin, no cross-site Sec-Fetch-Site), and takes
// POST bodies as application/json only (415 otherwise).
//
// Test hook: an action whose payload is a JSON object with a string field
// "_reject" is rejected with that string as its error.
package upstream

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

type actionsRequest struct {
	Actions []Action `json:"actions"`
}

type actionsResponse struct {
	Results []Result `json:"results"`
	want    []Action // the batch sent, for check
}

// check says what is wrong with an answer to want, "" if nothing.
func (r *actionsResponse) check() string {
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

type eventsResponse struct {
	Events []Event `json:"events"`
	Next   int64   `json:"next"`
}

type errorBody struct {
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
