package localserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/localserver"
	"synctray/localserver/clock"
	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
	"synctray/localserver/syncer"
	"synctray/upstream"
)

func TestEnqueueIsIdempotent(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	key := testsupport.NewKey()
	code, first := e.post(key, "message", `{"text":"hello"}`)
	if code != 202 || first.State != outbox.Queued || first.Key != key {
		t.Fatalf("first POST = %d %+v, want 202 queued", code, first)
	}
	code, again := e.post(key, "message", `{ "text" : "hello" }`)
	if code != 200 || again.ID != first.ID {
		t.Fatalf("same key, same body = %d id %d, want 200 id %d", code, again.ID, first.ID)
	}
	code, _ = e.post(key, "message", `{"text":"changed"}`)
	if code != 422 {
		t.Fatalf("same key, other body = %d, want 422", code)
	}
	if c := e.status().Counts; c[outbox.Queued] != 1 {
		t.Fatalf("counts = %v, want exactly one queued row", c)
	}
}

func TestBatchEnqueue(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	k1, k2 := testsupport.NewKey(), testsupport.NewKey()
	e.post(k1, "message", `{"n":1}`)
	resp, data := e.req("POST", "/api/actions/batch", map[string]any{"actions": []map[string]any{
		{"key": k1, "type": "message", "payload": map[string]int{"n": 1}},
		{"key": k2, "type": "message", "payload": map[string]int{"n": 2}},
		{"key": k1, "type": "message", "payload": map[string]int{"n": 99}},
		{"key": "nope", "type": "message", "payload": 1},
	}}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("batch = %d %s", resp.StatusCode, data)
	}
	var out struct {
		Results []localserver.BatchResult `json:"results"`
	}
	mustUnmarshal(t, data, &out)
	var got []int
	for _, r := range out.Results {
		got = append(got, r.Status)
	}
	if want := []int{200, 201, 422, 400}; !slices.Equal(got, want) {
		t.Fatalf("per-action statuses = %v, want %v (%s)", got, want, data)
	}
}

func TestSyncToUpstream(t *testing.T) {
	t.Run("queued while the upstream is down, drained in order when it is back", func(t *testing.T) {
		e := startHost(t, localserver.Config{Sync: syncer.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, ProbeEvery: 10 * time.Millisecond, BatchSize: 3}})
		e.up.SetFaults(upstream.Faults{Down: true})
		var keys []string
		for i := 0; i < 10; i++ {
			k := testsupport.NewKey()
			keys = append(keys, k)
			if code, _ := e.post(k, "message", fmt.Sprintf(`{"n":%d}`, i)); code != 202 {
				t.Fatalf("POST = %d", code)
			}
		}
		testsupport.WaitFor(t, "the host to notice the upstream is down", func() bool { return !e.status().Online })
		if c := e.status().Counts; c[outbox.Queued]+c[outbox.Syncing] != 10 || c[outbox.Synced] != 0 {
			t.Fatalf("counts while down = %v, want 10 queued", c)
		}
		e.up.SetFaults(upstream.Faults{})
		testsupport.WaitFor(t, "drained", func() bool { return e.status().Counts[outbox.Synced] == 10 })
		if got := e.upstreamEvents(); !slices.Equal(got, keys) {
			t.Fatalf("upstream apply order = %v, want %v", got, keys)
		}
		if !e.status().Online {
			t.Error("status still offline after draining")
		}
	})

	t.Run("a rejected action fails and does not block later ones", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		_, a := e.post(testsupport.NewKey(), "message", `{"n":1}`)
		_, bad := e.post(testsupport.NewKey(), "message", `{"_reject":"not allowed here"}`)
		_, c := e.post(testsupport.NewKey(), "message", `{"n":3}`)
		resp, data := e.req("POST", "/api/sync", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("sync = %d %s", resp.StatusCode, data)
		}
		var rep syncer.Report
		mustUnmarshal(t, data, &rep)
		if rep.Synced != 2 || rep.Rejected != 1 {
			t.Fatalf("report = %+v, want 2 synced, 1 rejected", rep)
		}
		for _, x := range []struct {
			id    int64
			state outbox.State
		}{{a.ID, outbox.Synced}, {bad.ID, outbox.Failed}, {c.ID, outbox.Synced}} {
			if got := e.get(x.id); got.State != x.state {
				t.Errorf("action %d = %s, want %s", x.id, got.State, x.state)
			}
		}
		if got := e.get(bad.ID); got.LastError != "not allowed here" {
			t.Errorf("last_error = %q, want the upstream's reason", got.LastError)
		}
	})

	t.Run("429 with Retry-After is honoured", func(t *testing.T) {
		clk := clock.NewFake(time.Now().Truncate(time.Second))
		e := startHost(t, localserver.Config{Sync: syncer.Options{Clock: clk, MinBackoff: time.Second, Jitter: func() float64 { return 0.5 }}})
		e.up.SetFaults(upstream.Faults{ThrottleRate: 1, RetryAfter: 120 * time.Second})
		_, a := e.post(testsupport.NewKey(), "message", `{}`)
		testsupport.WaitFor(t, "the 429 to be recorded", func() bool { return e.get(a.ID).Attempts == 1 && e.get(a.ID).State == outbox.Queued })
		got := e.get(a.ID)
		if got.NextAttemptAt == nil || got.NextAttemptAt.Sub(clk.Now()) != 120*time.Second {
			t.Fatalf("next attempt = %v, want now+120s", got.NextAttemptAt)
		}
		e.up.SetFaults(upstream.Faults{})
		clk.Advance(119 * time.Second)
		time.Sleep(50 * time.Millisecond)
		if got := e.get(a.ID); got.Attempts != 1 {
			t.Fatalf("attempts = %d before Retry-After elapsed, want 1", got.Attempts)
		}
		clk.Advance(time.Second)
		testsupport.WaitFor(t, "synced after Retry-After", func() bool { return e.get(a.ID).State == outbox.Synced })
	})

	t.Run("cancel and force sync work in work-offline mode", func(t *testing.T) {
		e := startHost(t, localserver.Config{})
		resp, data := e.req("PUT", "/api/mode", map[string]bool{"work_offline": true}, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("mode = %d %s", resp.StatusCode, data)
		}
		_, keep := e.post(testsupport.NewKey(), "message", `{"n":1}`)
		_, drop := e.post(testsupport.NewKey(), "message", `{"n":2}`)
		time.Sleep(50 * time.Millisecond)
		if got := e.get(keep.ID); got.State != outbox.Queued {
			t.Fatalf("working offline, action is %s, want queued", got.State)
		}
		resp, data = e.req("POST", fmt.Sprintf("/api/actions/%d/cancel", drop.ID), nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("cancel = %d %s", resp.StatusCode, data)
		}
		if resp, _ := e.req("POST", "/api/sync", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("force sync = %d", resp.StatusCode)
		}
		if got := e.get(keep.ID); got.State != outbox.Synced {
			t.Fatalf("after force sync: %s, want synced", got.State)
		}
		if got := e.appliedKeys(); !slices.Equal(got, []string{keep.Key}) {
			t.Fatalf("upstream applied %v, want only the kept action", got)
		}
		if !e.status().WorkOffline {
			t.Fatal("force sync ended work-offline mode; it should stay")
		}
		// A synced action cannot be cancelled: 409 with the reason.
		resp, data = e.req("POST", fmt.Sprintf("/api/actions/%d/cancel", keep.ID), nil, nil)
		if resp.StatusCode != 409 {
			t.Fatalf("cancel synced = %d %s, want 409", resp.StatusCode, data)
		}
		hist := e.get(drop.ID).History
		if len(hist) != 2 || hist[1].To != outbox.Cancelled {
			t.Fatalf("history = %+v, want created then cancelled", hist)
		}
	})

	t.Run("after a restart, actions left syncing are resent and applied once", func(t *testing.T) {
		_, upStore, upURL := testupstream.Start(t, upstream.Options{})
		dir := t.TempDir()
		// Simulate a crash mid-batch: 6 actions claimed, the upstream
		// applied the first 3, and the host died before recording it.
		db, err := outboxdb.Open(filepath.Join(dir, "outbox.db"), outboxdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for i := 0; i < 6; i++ {
			k := testsupport.NewKey()
			keys = append(keys, k)
			if _, _, err := db.Enqueue(context.Background(), outbox.NewAction{Key: k, Type: "message", Payload: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		claimed, err := db.Claim(context.Background(), 6, 0)
		if err != nil || len(claimed) != 6 {
			t.Fatalf("claim = %d, %v", len(claimed), err)
		}
		var sent []upstream.Action
		for _, a := range claimed[:3] {
			sent = append(sent, upstream.Action{Key: a.Key, Type: a.Type, Payload: a.Payload, CreatedAt: a.CreatedAt})
		}
		if _, err := upStore.Apply(context.Background(), sent); err != nil {
			t.Fatal(err)
		}
		db.Close()

		e := startHost(t, localserver.Config{DataDir: dir, UpstreamURL: upURL})
		e.upStore = upStore
		testsupport.WaitFor(t, "all synced", func() bool { return e.status().Counts[outbox.Synced] == 6 })
		got := e.appliedKeys()
		slices.Sort(got)
		slices.Sort(keys)
		if !slices.Equal(got, keys) {
			t.Fatalf("upstream applied %d keys %v, want each of the 6 once", len(got), got)
		}
		st, _ := upStore.Stats(context.Background())
		if st.Applied != 6 || st.Duplicates != 3 {
			t.Fatalf("upstream stats = %+v, want 6 applied and 3 duplicates", st)
		}
	})
}

func TestListPaging(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	for i := 0; i < 7; i++ {
		e.post(testsupport.NewKey(), "message", `{}`)
	}
	var ids []int64
	cursor := int64(0)
	for {
		resp, data := e.req("GET", fmt.Sprintf("/api/actions?state=queued&limit=3&cursor=%d", cursor), nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("list = %d %s", resp.StatusCode, data)
		}
		var p outbox.Page
		mustUnmarshal(t, data, &p)
		for _, a := range p.Actions {
			ids = append(ids, a.ID)
		}
		if p.Next == 0 {
			break
		}
		cursor = p.Next
	}
	if want := []int64{7, 6, 5, 4, 3, 2, 1}; !slices.Equal(ids, want) {
		t.Fatalf("paged ids = %v, want %v (newest first)", ids, want)
	}
}
