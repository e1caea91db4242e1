package app

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

// cells renders one table row through the table's own callbacks.
func cells(in *inspector, row int) []string {
	var out []string
	for col := range columns {
		o := in.table.CreateCell()
		in.updateCell(widget.TableCellID{Row: row, Col: col}, o)
		out = append(out, o.(*widget.Label).Text)
	}
	return out
}

func rowIDs(in *inspector) []int64 {
	var ids []int64
	for _, r := range in.rows {
		ids = append(ids, r.ID)
	}
	return ids
}

func filterTexts(in *inspector) string {
	var s []string
	for _, st := range filterOrder {
		s = append(s, in.filters[st].Text)
	}
	return strings.Join(s, " ")
}

// openInspector starts the app with the window shown and waits for rows.
func openInspector(t *testing.T, f *fakeHost, o Options) (*App, *inspector) {
	t.Helper()
	a := startApp(t, f, o) // no tray: the window opens at start
	waitFor(t, a, "the inspector's first rows", func() bool { return a.insp != nil && len(a.insp.rows) > 0 })
	return a, a.insp
}

// sample is an outbox with every state: ids 1–3 queued, 4–5 synced, 6 failed, 7 cancelled.
func sample() *fakeHost {
	f := newFakeHost()
	for i := 1; i <= 3; i++ {
		f.add("message", outbox.Queued, fmt.Sprintf(`{"text":"queued %d"}`, i))
	}
	f.add("message", outbox.Synced, `{"text":"synced 4"}`)
	f.add("note", outbox.Synced, `{"text":"synced 5"}`)
	f.add("message", outbox.Failed, `{"text":"failed 6"}`)
	f.add("message", outbox.Cancelled, `{"text":"cancelled 7"}`)
	return f
}

func TestInspectorFiltersCountsAndRows(t *testing.T) {
	a, in := openInspector(t, sample(), Options{})
	waitFor(t, a, "counts on the filters", func() bool {
		return filterTexts(in) == "Queued (3) Syncing (0) Synced (2) Failed (1) Cancelled (1) All (7)"
	})
	inspect(a, func() {
		if got := fmt.Sprint(rowIDs(in)); got != "[7 6 5 4 3 2 1]" {
			t.Errorf("rows %s, want all seven, newest first", got)
		}
		if in.filters[""].Importance != widget.HighImportance {
			t.Error("the All filter is not highlighted")
		}
		got := cells(in, 1) // action 6, failed
		want := []string{when(fakeEpoch.Add(6e9), "Jan 2 15:04:05"), "failed 6", "failed", "1", "", "payload rejected: text too long"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("row of action 6:\n got %q\nwant %q", got, want)
		}
		test.Tap(in.filters[outbox.Queued])
	})
	waitFor(t, a, "only queued rows", func() bool { return fmt.Sprint(rowIDs(in)) == "[3 2 1]" })
	inspect(a, func() {
		if in.filters[outbox.Queued].Importance != widget.HighImportance || in.filters[""].Importance == widget.HighImportance {
			t.Error("the Queued filter is not the highlighted one")
		}
		if in.pageOf.Text != "1–3 of 3" {
			t.Errorf("pager %q, want 1–3 of 3", in.pageOf.Text)
		}
		test.Tap(in.filters[outbox.Syncing])
	})
	waitFor(t, a, "no syncing rows", func() bool { return len(in.rows) == 0 && in.pageOf.Text == "No actions" })
}

func TestInspectorDetailPane(t *testing.T) {
	a, in := openInspector(t, sample(), Options{})
	inspect(a, func() {
		if in.detailTitle.Text != noSelection {
			t.Errorf("detail title %q before a selection", in.detailTitle.Text)
		}
		if in.copyKey.Visible() {
			t.Error("Copy key shows with no action selected")
		}
		if !in.cancel.Disabled() || !in.retry.Disabled() {
			t.Error("Cancel and Retry are enabled with nothing selected")
		}
		in.table.Select(widget.TableCellID{Row: 1, Col: 2}) // action 6, failed
	})
	waitFor(t, a, "the detail of action 6", func() bool { return in.detailTitle.Text == "Action 6 · failed" })
	inspect(a, func() {
		if want := "{\n  \"text\": \"failed 6\"\n}"; in.payload.Text != want {
			t.Errorf("payload %q, want it pretty-printed: %q", in.payload.Text, want)
		}
		for _, want := range []string{"Key: 0190a0b0-0000-7000-8000-000000000006", "Attempts: 1", "Last error: payload rejected: text too long"} {
			if !strings.Contains(in.fields.Text, want) {
				t.Errorf("fields %q lack %q", in.fields.Text, want)
			}
		}
		lines := strings.Split(in.history.Text, "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "(new) → queued") || !strings.Contains(lines[1], "queued → failed") {
			t.Errorf("history %q, want (new) → queued, queued → failed", lines)
		}
		if in.cancel.Disabled() || in.retry.Disabled() {
			t.Error("Cancel and Retry are disabled with an action selected")
		}
		if !in.copyKey.Visible() {
			t.Fatal("no Copy key button for the action shown")
		}
		test.Tap(in.copyKey)
		if got, want := a.fa.Clipboard().Content(), "0190a0b0-0000-7000-8000-000000000006"; got != want {
			t.Errorf("the clipboard holds %q after Copy key, want the key %q", got, want)
		}
	})
}

func TestInspectorButtonsCallTheHost(t *testing.T) {
	f := sample()
	a, in := openInspector(t, f, Options{})

	t.Run("Retry queues a failed action again", func(t *testing.T) {
		inspect(a, func() { in.table.Select(widget.TableCellID{Row: 1}) }) // action 6
		waitFor(t, a, "action 6 selected", func() bool { return in.detailTitle.Text == "Action 6 · failed" })
		inspect(a, func() { test.Tap(in.retry) })
		waitFor(t, a, "action 6 queued in the table", func() bool { return cells(in, 1)[2] == "queued" && in.notice.Text == "Action 6 is now queued" })
		if !f.called("Retry 6") {
			t.Errorf("host calls %q, want Retry 6", f.calls)
		}
	})
	t.Run("Cancel cancels a queued action", func(t *testing.T) {
		inspect(a, func() { in.table.Select(widget.TableCellID{Row: 4}) }) // action 3
		waitFor(t, a, "action 3 selected", func() bool { return in.detailTitle.Text == "Action 3 · queued" })
		inspect(a, func() { test.Tap(in.cancel) })
		waitFor(t, a, "action 3 cancelled in the table", func() bool {
			return cells(in, 4)[2] == "cancelled" && in.detailTitle.Text == "Action 3 · cancelled"
		})
		if !f.called("Cancel 3") {
			t.Errorf("host calls %q, want Cancel 3", f.calls)
		}
	})
	t.Run("Sync now sends the queued actions", func(t *testing.T) {
		inspect(a, func() { test.Tap(in.syncNow) })
		waitFor(t, a, "synced rows", func() bool {
			return in.notice.Text == "Synced 3 actions" && cells(in, 5)[2] == "synced" && cells(in, 6)[2] == "synced"
		})
		if !f.called("SyncNow") {
			t.Errorf("host calls %q, want SyncNow", f.calls)
		}
		waitFor(t, a, "counts after the sync", func() bool {
			return filterTexts(in) == "Queued (0) Syncing (0) Synced (5) Failed (0) Cancelled (2) All (7)"
		})
	})
	t.Run("Work offline in the window", func(t *testing.T) {
		inspect(a, func() { in.offline.SetChecked(true) })
		waitFor(t, a, "working offline", func() bool { return strings.HasPrefix(in.status.Text, "Working offline") })
		if !f.called("SetWorkOffline true") {
			t.Errorf("host calls %q, want SetWorkOffline true", f.calls)
		}
	})
}

func TestInspectorButtonsFollowTheSelectedActionsState(t *testing.T) {
	f := sample()
	a, in := openInspector(t, f, Options{})
	for _, c := range []struct {
		row           int
		title         string
		cancel, retry bool
		hint          string
	}{
		{2, "Action 5 · synced", false, false, "reached the upstream"},
		{0, "Action 7 · cancelled", false, false, "was cancelled"},
		{1, "Action 6 · failed", true, true, ""},
		{4, "Action 3 · queued", true, false, "Retry is for failed actions"},
	} {
		inspect(a, func() { in.table.Select(widget.TableCellID{Row: c.row}) })
		waitFor(t, a, c.title, func() bool { return in.detailTitle.Text == c.title && in.cancel.Disabled() == !c.cancel })
		inspect(a, func() {
			if in.cancel.Disabled() == c.cancel || in.retry.Disabled() == c.retry {
				t.Errorf("%s: Cancel enabled %v, Retry enabled %v; want %v, %v", c.title, !in.cancel.Disabled(), !in.retry.Disabled(), c.cancel, c.retry)
			}
			if c.hint != "" && !strings.Contains(in.fields.Text, c.hint) {
				t.Errorf("%s: the detail pane does not say why (%q):\n%s", c.title, c.hint, in.fields.Text)
			}
		})
	}
	inspect(a, func() { in.table.Select(widget.TableCellID{Row: 2}) })
	waitFor(t, a, "action 5", func() bool { return in.detailTitle.Text == "Action 5 · synced" && in.cancel.Disabled() })
	inspect(a, func() { test.Tap(in.cancel) }) // a disabled button does nothing
	if f.called("Cancel 5") {
		t.Error("a disabled Cancel reached the host")
	}
}

func TestInspectorMovesRowsLiveAndKeepsTheSelection(t *testing.T) {
	f := sample()
	a, in := openInspector(t, f, Options{})
	inspect(a, func() { test.Tap(in.filters[outbox.Queued]) })
	waitFor(t, a, "queued rows", func() bool { return fmt.Sprint(rowIDs(in)) == "[3 2 1]" })
	inspect(a, func() { in.table.Select(widget.TableCellID{Row: 1}) }) // action 2
	waitFor(t, a, "action 2 selected", func() bool { return in.detailTitle.Text == "Action 2 · queued" })

	// A new action arrives on top: the selection follows action 2 down.
	n := f.add("message", outbox.Queued, `{"text":"new"}`)
	f.setState(n.ID, outbox.Queued, "")
	waitFor(t, a, "the new row on top", func() bool { return fmt.Sprint(rowIDs(in)) == "[8 3 2 1]" })
	inspect(a, func() {
		if in.selRow != 2 || in.selID != 2 {
			t.Errorf("selection row %d id %d, want row 2 (action 2)", in.selRow, in.selID)
		}
	})

	// The host reports action 2 synced: it leaves the queued rows, the
	// counts move, and the detail pane still shows it.
	f.setState(2, outbox.Synced, "")
	waitFor(t, a, "action 2 gone from the queued rows", func() bool { return fmt.Sprint(rowIDs(in)) == "[8 3 1]" })
	waitFor(t, a, "action 2 synced in the detail pane", func() bool { return in.detailTitle.Text == "Action 2 · synced" })
	waitFor(t, a, "counts", func() bool { return strings.HasPrefix(filterTexts(in), "Queued (3) Syncing (0) Synced (3)") })
	inspect(a, func() {
		if in.selRow != -1 {
			t.Errorf("table selection row %d, want none (action 2 left this filter)", in.selRow)
		}
		if a.snapshot().selected != 2 {
			t.Errorf("selected %d, want 2", a.snapshot().selected)
		}
	})
}

func TestInspectorCancelAllQueuedAsksFirst(t *testing.T) {
	f := sample()
	a, in := openInspector(t, f, Options{})
	waitFor(t, a, "Cancel all enabled", func() bool { return !in.cancelAll.Disabled() })
	inspect(a, func() { test.Tap(in.cancelAll) })
	if f.called("CancelAllQueued") {
		t.Fatal("cancelled without asking")
	}
	inspect(a, func() {
		top := in.w.Canvas().Overlays().Top()
		if top == nil {
			t.Fatal("no confirmation dialog")
		}
		b := findButton(top, LabelConfirmCancel)
		if b == nil {
			t.Fatalf("no %q button in the dialog", LabelConfirmCancel)
		}
		test.Tap(b)
	})
	waitFor(t, a, "queued actions cancelled", func() bool {
		return in.notice.Text == "Cancelled 3 queued actions" && strings.HasPrefix(filterTexts(in), "Queued (0)") && in.cancelAll.Disabled()
	})
}

func findButton(o fyne.CanvasObject, text string) *widget.Button {
	for _, c := range test.LaidOutObjects(o) {
		if b, ok := c.(*widget.Button); ok && b.Text == text {
			return b
		}
	}
	return nil
}

func TestInspectorPagesLargeOutboxes(t *testing.T) {
	f := newFakeHost()
	for range 100000 {
		f.add("message", outbox.Queued, `{}`)
	}
	a, in := openInspector(t, f, Options{PageSize: 100})
	waitFor(t, a, "the first page", func() bool { return in.pageOf.Text == "1–100 of 100,000" })
	inspect(a, func() {
		if in.rows[0].ID != 100000 || len(in.rows) != 100 {
			t.Errorf("first page: %d rows from %d", len(in.rows), in.rows[0].ID)
		}
		if !in.newer.Disabled() || in.older.Disabled() {
			t.Error("pager buttons: want Newer disabled, Older enabled")
		}
		test.Tap(in.older)
	})
	waitFor(t, a, "the second page", func() bool { return in.pageOf.Text == "101–200 of 100,000" && in.rows[0].ID == 99900 })
	inspect(a, func() { test.Tap(in.newer) })
	waitFor(t, a, "the first page again", func() bool { return in.pageOf.Text == "1–100 of 100,000" && in.rows[0].ID == 100000 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxLimit > 100 {
		t.Errorf("the inspector listed %d actions at once, want pages of 100", f.maxLimit)
	}
}

func TestNotificationsAreCoalesced(t *testing.T) {
	f := newFakeHost()
	mine := f.add("message", outbox.Queued, `{"text":"mine"}`)
	type note struct{ title, body string }
	notes := make(chan note, 16)
	startApp(t, f, Options{Tray: &fakeTray{}, Notify: func(n Notification) { notes <- note{n.Title, n.Body} }})
	expect := func(title, body string) {
		t.Helper()
		select {
		case n := <-notes:
			if n.title != title || n.body != body {
				t.Fatalf("notification %q / %q, want %q / %q", n.title, n.body, title, body)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no notification %q", title)
		}
	}

	// The host says the backlog went out after being offline.
	f.setState(mine.ID, outbox.Synced, "")
	f.hub.Publish(localserver.Event{Kind: "report", Report: &localserver.SyncReport{Synced: 12, AfterOffline: true}})
	expect("Back online", "12 actions synced")

	// A burst of rejections is one notification.
	for i := range 5 {
		r := f.add("message", outbox.Queued, fmt.Sprintf(`{"n":%d}`, i))
		f.setState(r.ID, outbox.Failed, "too long")
	}
	expect("Upstream rejected 5 actions", "First: Action 2 (message) was rejected: too long. Open Outbox to retry or cancel them.")

	// Inbound messages: ours (the host marks them Own) are not news.
	message := func(key, payload string) localserver.Event {
		return localserver.Event{Kind: "message", Message: &localserver.Message{Key: key, Type: "message", Payload: json.RawMessage(payload)}}
	}
	own := message(mine.Key, `{"text":"mine"}`)
	own.Message.Own = true
	f.hub.Publish(own)
	f.hub.Publish(message("0190a0b0-0000-7000-8000-ffffffffffff", `{"text":"hello from the other laptop"}`))
	expect("New message", "hello from the other laptop")
	f.hub.Publish(message("0190a0b0-0000-7000-8000-fffffffffff1", `{"text":"one"}`))
	f.hub.Publish(message("0190a0b0-0000-7000-8000-fffffffffff2", `{"text":"two"}`))
	expect("2 new messages", "one …")

	// The host is blocked: one notification with its reason, however
	// often the status repeats it.
	blocked := f.statusLocked()
	blocked.State = syncer.StateBlocked
	blocked.Problem = &syncer.Problem{Code: "unauthorized", Message: "Upstream refused the token (401 Unauthorized)", Since: fakeEpoch}
	for range 3 {
		f.hub.Publish(localserver.Event{Kind: "status", Status: &blocked})
	}
	expect("Sync blocked", "Upstream refused the token (401 Unauthorized)")
	select {
	case n := <-notes:
		t.Fatalf("unexpected notification %q / %q", n.title, n.body)
	case <-time.After(150 * time.Millisecond):
	}
}
