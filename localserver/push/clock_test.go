package push_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"synctray/localserver/clock"
	"synctray/localserver/push"
)

func TestTheCoalescingWindowRunsOnTheInjectedClock(t *testing.T) {
	dir := t.TempDir()
	keys, err := push.LoadOrCreateKeys(filepath.Join(dir, "vapid.json"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := push.OpenStore(filepath.Join(dir, "push.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ps := &pushService{status: http.StatusCreated}
	ts := httptest.NewServer(ps)
	defer ts.Close()
	b := newBrowser(t)
	store.Add(context.Background(), b.subscription(ts.URL+"/p"))

	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	sender := push.NewSender(store, keys, push.Options{Coalesce: 2 * time.Second, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sender.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	for range 3 {
		sender.Notify(push.Notification{Kind: "message", Title: "New message", Body: "m", Count: 1})
	}
	sent := func() int {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return len(ps.bodies)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := clk.Waiters(); n == 0; n, _ = clk.Waiters() {
		if time.Now().After(deadline) {
			t.Fatal("the sender never armed its window")
		}
		time.Sleep(time.Millisecond)
	}
	if got := sent(); got != 0 {
		t.Fatalf("%d pushes before the window closed, want 0", got)
	}
	clk.Advance(2 * time.Second)
	for sent() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no push after the window closed")
		}
		time.Sleep(time.Millisecond)
	}
	var got push.Notification
	ps.mu.Lock()
	json.Unmarshal(b.decrypt(t, ps.bodies[0]), &got)
	ps.mu.Unlock()
	if got.Count != 3 {
		t.Fatalf("coalesced count = %d, want 3", got.Count)
	}
}
