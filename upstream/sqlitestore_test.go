package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Store contract is tested by storetest (conformance_test.go); these
// are the SQLite store's own checks and the helpers of the server's tests.

func openTestStore(t *testing.T) *SQLiteStore {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "upstream.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func act(key, typ, payload string) Action {
	return Action{Key: key, Type: typ, Payload: json.RawMessage(payload), CreatedAt: time.Now()}
}

func statuses(rs []Result) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", r.Key, r.Status)
		if r.Error != "" {
			fmt.Fprintf(&b, "(%s)", r.Error)
		}
	}
	return b.String()
}

func TestSQLiteStoreIsInWALMode(t *testing.T) {
	s := openTestStore(t)
	if _, err := s.Apply(context.Background(), []Action{act("a", "t", `{}`)}); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.r.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	if err := s.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTheRejectHookIsFoundHoweverItsNameIsSpelled(t *testing.T) {
	for payload, want := range map[string]string{
		`{"_reject":"no"}`:                     "no",
		`{"a":1, "_reject" : "no"}`:            "no",
		`{"\u005freject":"escaped"}`:           "escaped",
		`{"_rej\u0065ct":"escaped"}`:           "escaped",
		`{"text":"say \"_reject\" politely"}`:  "",
		`{"text":"\u00e9", "other":"_reject"}`: "",
		`{"_reject":5}`:                        "",
		`{"text":"hello"}`:                     "",
		`["_reject"]`:                          "",
	} {
		if got := validate(act("k", "t", payload)); got != want {
			t.Errorf("validate(%s) = %q, want %q", payload, got, want)
		}
	}
}
