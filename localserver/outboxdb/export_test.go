package outboxdb

import (
	"testing"
	"time"

	"synctray/localserver/outbox"
)

func TestOldestQueuedAt(t *testing.T) {
	t.Run("is the creation time of the head of the queue, and none when nothing is queued", func(t *testing.T) {
		clk := newClock()
		db := mustOpen(t, Options{Now: clk.Now})
		if _, ok, err := db.OldestQueuedAt(ctx); err != nil || ok {
			t.Fatalf("empty outbox: ok=%v err=%v, want none", ok, err)
		}
		first := mustEnqueue(t, db)
		clk.Advance(time.Minute)
		mustEnqueue(t, db)
		at, ok, err := db.OldestQueuedAt(ctx)
		if err != nil || !ok || !at.Equal(first.CreatedAt) {
			t.Fatalf("OldestQueuedAt = %v, %v, %v; want %v", at, ok, err, first.CreatedAt)
		}
		mustClaim(t, db, 2, 0)
		if _, ok, err := db.OldestQueuedAt(ctx); err != nil || ok {
			t.Fatalf("all syncing: ok=%v err=%v, want none queued", ok, err)
		}
	})
}

func TestExportPage(t *testing.T) {
	clk := newClock()
	db := mustOpen(t, Options{Now: clk.Now})
	var all []outbox.Action
	for range 7 {
		all = append(all, mustEnqueue(t, db))
		clk.Advance(time.Hour)
	}
	// Two of them fail: their history has three entries.
	claimed := mustClaim(t, db, 2, 0)
	if err := db.Complete(ctx, []outbox.Outcome{{ID: claimed[0].ID, Status: outbox.Rejected, Error: "no"}, {ID: claimed[1].ID, Status: outbox.Rejected, Error: "no"}}); err != nil {
		t.Fatal(err)
	}

	exportAll := func(t *testing.T, q ExportQuery) []Exported {
		t.Helper()
		var out []Exported
		for {
			page, next, err := db.ExportPage(ctx, q)
			if err != nil {
				t.Fatalf("ExportPage(%+v): %v", q, err)
			}
			if len(page) > q.Limit {
				t.Fatalf("page of %d, limit %d", len(page), q.Limit)
			}
			out = append(out, page...)
			if next == 0 {
				return out
			}
			q.After = next
		}
	}

	t.Run("pages through every action oldest first, each with its own history", func(t *testing.T) {
		got := exportAll(t, ExportQuery{Limit: 3})
		if len(got) != len(all) {
			t.Fatalf("exported %d actions, want %d", len(got), len(all))
		}
		for i, e := range got {
			if e.ID != all[i].ID {
				t.Fatalf("action %d has id %d, want %d (oldest first)", i, e.ID, all[i].ID)
			}
			_, hist := mustGet(t, db, e.ID)
			if len(e.History) != len(hist) || e.History[0].To != outbox.Queued {
				t.Fatalf("action %d history %+v, want %+v", e.ID, e.History, hist)
			}
		}
	})

	t.Run("keeps only the state asked for, with their histories", func(t *testing.T) {
		got := exportAll(t, ExportQuery{State: outbox.Failed, Limit: 1})
		if len(got) != 2 || got[0].State != outbox.Failed || len(got[0].History) != 3 || len(got[1].History) != 3 {
			t.Fatalf("failed = %+v, want the 2 failed actions with 3 history entries each", got)
		}
	})

	t.Run("keeps only actions created at or after since", func(t *testing.T) {
		got := exportAll(t, ExportQuery{Since: all[4].CreatedAt, Limit: 2})
		if len(got) != 3 || got[0].ID != all[4].ID {
			t.Fatalf("since = %d actions from %v, want the last 3", len(got), got)
		}
	})

	t.Run("refuses an unknown state", func(t *testing.T) {
		if _, _, err := db.ExportPage(ctx, ExportQuery{State: "lost"}); err == nil {
			t.Fatal("want an error")
		}
	})
}
