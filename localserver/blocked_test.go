package localserver_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/failure"
	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/syncer"
)

// A refusal outlives a restart with the same configuration: the host
// does not try the refused token again until Sync now or a new one.
func TestTheBlockedStateOutlivesARestartWithTheSameConfiguration(t *testing.T) {
	var posts atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"unauthorized","message":"wrong token"}}`))
	}))
	defer up.Close()
	dir := t.TempDir()
	cfg := localserver.Config{DataDir: dir, UpstreamURL: up.URL, UpstreamToken: "old-token"}
	blocked := func(e *env) bool {
		st := e.status()
		return st.State == syncer.StateBlocked && st.Problem != nil && st.Problem.Code == failure.CodeUnauthorized
	}

	e := startHost(t, cfg)
	e.post(testsupport.NewKey(), "message", `{"text":"hi"}`)
	testsupport.WaitFor(t, "blocked by the 401", func() bool { return blocked(e) })
	since := e.status().Problem.Since
	e.stop()
	if _, err := os.Stat(filepath.Join(dir, "blocked.json")); err != nil {
		t.Fatalf("the refusal is not kept: %v", err)
	}

	sent := posts.Load()
	e = startHost(t, cfg)
	if !blocked(e) {
		t.Fatalf("after a restart with the same configuration: %+v, want blocked (unauthorized) at once", e.status().Status)
	}
	if got := e.status().Problem.Since; !got.Equal(since) {
		t.Errorf("blocked since %v, want the first refusal's %v", got, since)
	}
	// A new write kicks the engine; give it the time it needs to send.
	e.post(testsupport.NewKey(), "message", `{"text":"again"}`)
	time.Sleep(500 * time.Millisecond)
	if n := posts.Load(); n != sent {
		t.Fatalf("the restarted host sent %d more batches with the refused token", n-sent)
	}
	// Sync now tries once more (and is refused again).
	e.req("POST", "/api/sync", nil, nil)
	if posts.Load() == sent {
		t.Fatal("Sync now sent nothing")
	}
	testsupport.WaitFor(t, "blocked again", func() bool { return blocked(e) })
	e.stop()

	// A new token is a new configuration: the host tries it.
	sent = posts.Load()
	cfg.UpstreamToken = "new-token"
	e = startHost(t, cfg)
	testsupport.WaitFor(t, "a try with the new token", func() bool { return posts.Load() > sent })
	e.stop()
}
