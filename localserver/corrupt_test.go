package localserver_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"synctray/internal/failure"
	"synctray/internal/sqlitedb"
	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

// An outbox damaged while the host runs, with real SQLite: the page that
// holds the oldest queued actions is overwritten in the file, as a bad
// sector would. SQLite's page caches do not hide it: a checkpoint from
// another connection moves every page into the main file (as the host's
// own automatic checkpoints do, bit by bit) and restarts the WAL, which
// makes every connection drop its cache at its next transaction, so the
// next claim reads the damaged page from disk.
func TestAnOutboxDamagedAtRunTimeBlocksWithStorage(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	const n = 500
	var items []string
	for i := range n {
		items = append(items, fmt.Sprintf(`{"key":%q,"type":"message","payload":{"n":%d,"text":%q}}`, testsupport.NewKey(), i, strings.Repeat("x", 200)))
	}
	resp, data := e.req("POST", "/api/actions/batch", `{"actions":[`+strings.Join(items, ",")+`]}`, nil)
	if resp.StatusCode != http.StatusOK || strings.Count(string(data), `"status":201`) != n {
		t.Fatalf("enqueue: %d %.300s", resp.StatusCode, data)
	}

	path := filepath.Join(e.dataDir, "outbox.db")
	damageOldestRows(t, path)

	// Resume automatic sync: the engine claims the oldest actions.
	e.req("PUT", "/api/mode", `{"work_offline":false}`, nil)
	testsupport.WaitFor(t, "a storage problem", func() bool {
		p := e.status().Problem
		return p != nil && p.Code == failure.CodeStorage
	})
	st := e.status()
	want := "The outbox " + path + " is damaged"
	if st.State != syncer.StateBlocked || !strings.HasPrefix(st.Problem.Message, want) {
		t.Fatalf("status = %s %+v, want blocked with %q", st.State, st.Problem, want)
	}
	if strings.Contains(strings.ToLower(st.Problem.Message), "upstream") || st.LastError != "" || st.OfflineSince != nil {
		t.Fatalf("the status blames the upstream: %+v (last error %q)", st.Problem, st.LastError)
	}
	if got := len(e.appliedKeys()); got != 0 {
		t.Fatalf("the upstream applied %d actions, want none: the claim failed", got)
	}

	// Nothing acknowledged is dropped: every action is still counted
	// queued, and the ones on pages that are intact can still be read.
	if c := st.Counts; c[outbox.Queued] != n || c[outbox.Failed] != 0 || c[outbox.Syncing] != 0 {
		t.Fatalf("counts = %v, want all %d queued", c, n)
	}
	resp, data = e.req("GET", "/api/actions?limit=100", nil, nil)
	var page outbox.Page
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &page) != nil || len(page.Actions) != 100 || page.Actions[0].ID != n {
		t.Fatalf("list newest: %d %.300s, want the 100 newest", resp.StatusCode, data)
	}

	// The API says what is wrong, in the status's words, with 503.
	checkStorage := func(what string, resp *http.Response, data []byte) {
		t.Helper()
		var body struct{ Error localserver.ErrorBody }
		json.Unmarshal(data, &body)
		if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != failure.CodeStorage || !strings.HasPrefix(body.Error.Message, want) {
			t.Errorf("%s: %d %s, want 503 storage saying %q", what, resp.StatusCode, data, want)
		}
	}
	resp, data = e.req("GET", "/api/actions/1", nil, nil)
	checkStorage("get an action on the damaged page", resp, data)
	resp, data = e.req("POST", "/api/actions/1/cancel", nil, nil)
	checkStorage("cancel an action on the damaged page", resp, data)
	resp, data = e.req("POST", "/api/sync", nil, nil)
	checkStorage("Sync now", resp, data)

	// A new write is refused, not stored in the damaged file: the page's
	// service worker keeps a write the host answers 503 to in the browser.
	before := e.status().Counts[outbox.Queued]
	resp, data = e.req("POST", "/api/actions", map[string]any{"type": "message", "payload": map[string]string{"text": "after"}},
		map[string]string{"Idempotency-Key": testsupport.NewKey()})
	checkStorage("enqueue after the damage", resp, data)
	resp, data = e.req("POST", "/api/actions/batch", map[string]any{"actions": []map[string]any{
		{"key": testsupport.NewKey(), "type": "message", "payload": map[string]string{"text": "after"}}}}, nil)
	checkStorage("a batch after the damage", resp, data)
	if got := e.status().Counts[outbox.Queued]; got != before {
		t.Fatalf("%d queued after refused writes, want %d: nothing stored", got, before)
	}
	if p := e.status().Problem; p == nil || p.Code != failure.CodeStorage {
		t.Fatalf("problem after refused writes = %+v, want storage still: the file is still damaged", p)
	}
}

// damageOldestRows checkpoints the outbox at path into its main file and
// overwrites the page that holds the actions table's first rows.
func damageOldestRows(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", sqlitedb.DSN(path, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var root int
	if err := db.QueryRowContext(ctx, `SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = 'actions'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	var busy, logged, moved int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &moved); err != nil || busy != 0 {
		t.Fatalf("checkpoint: busy %d, %v", busy, err)
	}
	leaf := testsupport.LeftmostLeaf(t, path, root)
	if leaf == root {
		t.Fatalf("the actions table fits in its root page %d: too few rows to damage only some", root)
	}
	testsupport.DamagePage(t, path, leaf)
}
