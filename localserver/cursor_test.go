package localserver_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/upstream"
)

// applyElsewhere applies n actions to the upstream as another client would.
func applyElsewhere(t *testing.T, store upstream.Store, n int) []string {
	t.Helper()
	var acts []upstream.Action
	var keys []string
	for i := 0; i < n; i++ {
		k := testsupport.NewKey()
		keys = append(keys, k)
		acts = append(acts, upstream.Action{Key: k, Type: "message", Payload: json.RawMessage(`{"text":"from elsewhere"}`), CreatedAt: time.Now()})
	}
	if _, err := store.Apply(context.Background(), acts); err != nil {
		t.Fatal(err)
	}
	return keys
}

// nextMessages returns the next n "message" events of sub.
func nextMessages(t *testing.T, sub *localserver.Subscription, n int) []localserver.Message {
	t.Helper()
	var out []localserver.Message
	deadline := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				t.Fatal("subscription closed")
			}
			if ev.Kind == "message" {
				out = append(out, *ev.Message)
			}
		case <-deadline:
			t.Fatalf("got %d of %d messages within 15 s", len(out), n)
		}
	}
	return out
}

func savedCursor(dir string) int64 {
	b, _ := os.ReadFile(filepath.Join(dir, "events-cursor"))
	c, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return c
}

func TestEventsCursor(t *testing.T) {
	t.Run("the cursor on disk follows each burst of announced messages while the host runs, so a crash does not announce them again", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		sub := e.host.Hub().Subscribe(0)
		applyElsewhere(t, e.upStore, 5)
		msgs := nextMessages(t, sub, 5)
		sub.Close()
		last := msgs[len(msgs)-1].Cursor
		// What a SIGKILL would leave: the file as it is while running.
		testsupport.WaitFor(t, "the cursor on disk to reach the last announced message", func() bool { return savedCursor(e.dataDir) == last })

		// A restart from that file announces only what is new.
		e.restart()
		sub = e.host.Hub().Subscribe(0)
		defer sub.Close()
		fresh := applyElsewhere(t, e.upStore, 1)
		if got := nextMessages(t, sub, 1)[0]; got.Key != fresh[0] {
			t.Fatalf("first message after restart is %s (cursor %d), want only the new %s", got.Key, got.Cursor, fresh[0])
		}
	})

	t.Run("the cursor file is private and left without temporary files", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		sub := e.host.Hub().Subscribe(0)
		defer sub.Close()
		applyElsewhere(t, e.upStore, 3)
		last := nextMessages(t, sub, 3)[2].Cursor
		testsupport.WaitFor(t, "the cursor on disk", func() bool { return savedCursor(e.dataDir) == last })
		e.stop()
		testsupport.CheckPrivate(t, filepath.Join(e.dataDir, "events-cursor"))
		if tmp, _ := filepath.Glob(filepath.Join(e.dataDir, ".events-cursor.tmp-*")); len(tmp) != 0 {
			t.Fatalf("temporary files left: %v", tmp)
		}
	})
}
