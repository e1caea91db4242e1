// Package upstream owns synctray's reference upstream: the store that
// applies each idempotency key exactly once (the Store interface, its
// SQLite implementation SQLiteStore, and what every implementation
// shares: Plan, Hub) and the HTTP/WebSocket server in front of it, with
// fault injection for tests and demos (Server). The PostgreSQL store is
// upstream/pgstore. The protocol's wire types and the client live in
// upstream/protocol; they are re-exported here for the server's callers.
//
// The server answers only requests whose Host names it (see
// Options.AllowedHosts) and that no web page made (no Origin, no
// cross-site Sec-Fetch-Site), and takes POST bodies as application/json
// only (415 otherwise).
//
// Test hook: an action whose payload is a JSON object with a string field
// "_reject" is rejected with that string as its error.
package upstream

import "synctray/upstream/protocol"

// The protocol's types and limits, as the server and its tests use them.
type (
	Action    = protocol.Action
	Result    = protocol.Result
	Event     = protocol.Event
	Stats     = protocol.Stats
	Client    = protocol.Client
	HTTPError = protocol.HTTPError
)

// Result statuses and protocol limits.
const (
	StatusApplied   = protocol.StatusApplied
	StatusDuplicate = protocol.StatusDuplicate
	StatusRejected  = protocol.StatusRejected
	MaxBodyBytes    = protocol.MaxBodyBytes
	MaxBatch        = protocol.MaxBatch
	MaxPayloadBytes = protocol.MaxPayloadBytes
	DefaultLimit    = protocol.DefaultLimit
	MaxLimit        = protocol.MaxLimit
	ProtocolName    = protocol.ProtocolName
)

type (
	actionsRequest  = protocol.ActionsRequest
	actionsResponse = protocol.ActionsResponse
	eventsResponse  = protocol.EventsResponse
	errorBody       = protocol.ErrorBody
)
