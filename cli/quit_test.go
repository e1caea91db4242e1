package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
)

func TestQuitStopsTheRunningHostCleanly(t *testing.T) {
	dir := t.TempDir()
	h, err := localserver.Open(localserver.Config{DataDir: dir, Addr: "127.0.0.1:0", UpstreamURL: "http://127.0.0.1:1",
		WorkOffline: true, Logger: testsupport.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background()) }() // only quit stops it
	addr := strings.TrimPrefix(h.URL(), "http://")
	enqueue(t, h)

	code, stdout, stderr := run(t, "quit", "--data-dir", dir, "--addr", addr)
	if code != 0 || !strings.Contains(stdout, "stopped") {
		t.Fatalf("quit: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after quit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the host still runs 10 s after quit said it stopped")
	}
	// Closed cleanly: the data dir is free again and the action kept.
	db, err := outboxdb.Open(filepath.Join(dir, "outbox.db"), outboxdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if st, err := db.Counts(context.Background()); err != nil || st[outbox.Queued] != 1 {
		t.Fatalf("after quit: counts %+v, %v; want the one queued action", st, err)
	}

	t.Run("with no host running it says so", func(t *testing.T) {
		code, _, stderr := run(t, "quit", "--data-dir", dir, "--addr", addr)
		if code == 0 || !strings.Contains(stderr, "no synctray answers at "+addr) {
			t.Fatalf("exit %d stderr %q", code, stderr)
		}
	})
}
