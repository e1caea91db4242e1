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
	"synctray/internal/testsupport/testupstream"
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

// TestRestartsWhileEventsStreamInAnnounceEachEventOnce restarts the host
// again and again while another client's actions stream in: across the
// restarts, its pages get every event exactly once. (An event delivered
// while the host stopped used to have its cursor saved after the hub had
// closed: announced to nobody, and not again after the restart.)
func TestRestartsWhileEventsStreamInAnnounceEachEventOnce(t *testing.T) {
	_, upStore, upURL := testupstream.Start(t, upstream.Options{})
	cfg := localserver.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", UpstreamURL: upURL, WorkOffline: true,
		Logger: testsupport.Logger(t), HubBuffer: 1 << 14}
	const batches, perBatch, restarts = 200, 20, 20
	var sent []string
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for range batches {
			time.Sleep(2 * time.Millisecond)
			var acts []upstream.Action
			for range perBatch {
				acts = append(acts, upstream.Action{Key: testsupport.NewKey(), Type: "message", Payload: json.RawMessage(`{}`), CreatedAt: time.Now()})
			}
			if _, err := upStore.Apply(context.Background(), acts); err != nil {
				t.Error(err)
				return
			}
			for _, a := range acts {
				sent = append(sent, a.Key)
			}
		}
	}()

	// run runs the host until until says so, counting the messages it
	// announces until its hub closes.
	var got []string
	run := func(until func() bool) {
		h, err := localserver.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		sub := h.Hub().Subscribe(0) // before Run, which starts the follower
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for stopping := false; ; {
			select {
			case ev, ok := <-sub.C:
				if !ok {
					if !stopping {
						t.Fatal("the hub dropped the subscription")
					}
					if err := <-done; err != nil {
						t.Fatal(err)
					}
					return
				}
				if ev.Kind == "message" {
					got = append(got, ev.Message.Key)
				}
			case <-tick.C:
				if !stopping && until() {
					stopping = true
					cancel()
				}
			}
		}
	}
	for i := range restarts {
		deadline := time.Now().Add(time.Duration(20+7*i) * time.Millisecond)
		run(func() bool { return time.Now().After(deadline) })
	}
	<-writerDone
	deadline := time.Now().Add(15 * time.Second)
	run(func() bool { return len(got) >= len(sent) || time.Now().After(deadline) })

	seen := map[string]int{}
	for _, k := range got {
		seen[k]++
	}
	var twice, never int
	for _, k := range sent {
		switch seen[k] {
		case 0:
			never++
		case 1:
		default:
			twice++
		}
	}
	if never+twice > 0 || len(got) != len(sent) {
		t.Fatalf("%d events sent, %d announced: %d never, %d more than once", len(sent), len(got), never, twice)
	}
}
