package outbox

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCanTransitionAllPairs(t *testing.T) {
	legal := map[[2]State]bool{
		{Queued, Syncing}:   true,
		{Queued, Cancelled}: true,
		{Syncing, Synced}:   true,
		{Syncing, Queued}:   true,
		{Syncing, Failed}:   true,
		{Failed, Queued}:    true,
		{Failed, Cancelled}: true,
	}
	n := 0
	for _, from := range States {
		for _, to := range States {
			n++
			want := legal[[2]State{from, to}]
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	if n != 25 {
		t.Fatalf("checked %d pairs, want 25", n)
	}
	// Unknown and empty states never transition.
	for _, s := range States {
		if CanTransition("", s) || CanTransition(s, "") || CanTransition("bogus", s) || CanTransition(s, "bogus") {
			t.Errorf("unknown state transitions to or from %s", s)
		}
	}
}

func TestStateValid(t *testing.T) {
	for _, s := range States {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	for _, s := range []State{"", "Queued", "done"} {
		if s.Valid() {
			t.Errorf("%q valid", s)
		}
	}
}

func TestValidate(t *testing.T) {
	const key = "0190a5b4-7c1e-7d2a-9f3b-1c2d3e4f5a6b"
	big := json.RawMessage(`"` + strings.Repeat("x", MaxPayloadBytes) + `"`)
	tests := []struct {
		name     string
		n        NewAction
		field    string
		tooLarge bool
	}{
		{"ok", NewAction{Key: key, Type: "note.create", Payload: json.RawMessage(`{"a":1}`)}, "", false},
		{"upper-case key ok", NewAction{Key: strings.ToUpper(key), Type: "t", Payload: json.RawMessage(`1`)}, "", false},
		{"no key", NewAction{Type: "t", Payload: json.RawMessage(`1`)}, "key", false},
		{"non-UUID key", NewAction{Key: "not-a-uuid", Type: "t", Payload: json.RawMessage(`1`)}, "key", false},
		{"key bad hex", NewAction{Key: "0190a5b4-7c1e-7d2a-9f3b-1c2d3e4f5a6g", Type: "t", Payload: json.RawMessage(`1`)}, "key", false},
		{"empty type", NewAction{Key: key, Payload: json.RawMessage(`1`)}, "type", false},
		{"long type", NewAction{Key: key, Type: strings.Repeat("t", MaxTypeLen+1), Payload: json.RawMessage(`1`)}, "type", false},
		{"no payload", NewAction{Key: key, Type: "t"}, "payload", false},
		{"invalid JSON", NewAction{Key: key, Type: "t", Payload: json.RawMessage(`{"a":`)}, "payload", false},
		{"too large", NewAction{Key: key, Type: "t", Payload: big}, "payload", true},
		{"invalid UTF-8 in a payload string", NewAction{Key: key, Type: "t", Payload: json.RawMessage("\"caf\xe9\"")}, "payload", false},
		{"invalid UTF-8 in the type", NewAction{Key: key, Type: "t\xff", Payload: json.RawMessage(`1`)}, "type", false},
		{"UTF-8 text ok", NewAction{Key: key, Type: "café", Payload: json.RawMessage(`"café ✓"`)}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Validate = %v, want *InvalidError", err)
			}
			if inv.Field != tt.field || inv.TooLarge != tt.tooLarge {
				t.Errorf("got field %q tooLarge %v, want %q %v", inv.Field, inv.TooLarge, tt.field, tt.tooLarge)
			}
		})
	}
}

func TestTransitionErrorMessage(t *testing.T) {
	cases := []struct {
		name string
		err  TransitionError
		want string
	}{
		{"a forbidden change says why", TransitionError{ID: 7, From: Synced, To: Cancelled},
			"action 7 is synced and cannot be cancelled: it has already reached the upstream"},
		{"cancelling a cancelled action says it already is", TransitionError{ID: 20010, From: Cancelled, To: Cancelled},
			"action 20010 is already cancelled"},
		{"retrying a queued action says it already is", TransitionError{ID: 3, From: Queued, To: Queued},
			"action 3 is already queued"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.err.Error(); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
