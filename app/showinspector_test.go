package app

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

// laterUI runs UI functions on a goroutine of their own, a little later,
// as Fyne's desktop driver does with fyne.Do; the test driver runs them at
// once, which hid issue 9's empty table.
func laterUI(t *testing.T) func(func()) {
	q := make(chan func(), 64)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case f := <-q:
				time.Sleep(5 * time.Millisecond)
				f()
			case <-done:
				return
			}
		}
	}()
	return func(f func()) { q <- f }
}

func TestOutboxFromTheTrayShowsTheRowsAtOnce(t *testing.T) {
	f := sample()
	tr := &fakeTray{}
	a := startApp(t, f, Options{Tray: tr, Do: laterUI(t), RefreshEvery: time.Hour})
	waitFor(t, a, "the tray's status", func() bool { return statusItem(tr) != "" })
	a.ShowInspector() // what the tray's "Outbox…" item calls
	waitFor(t, a, "the rows", func() bool { return a.insp != nil && len(a.insp.rows) == 7 })
}

func TestTheWholeRowFitsTheDefaultWindow(t *testing.T) {
	test.NewTempApp(t) // text is measured with the app's theme
	avail := float32(defaultWidth)*splitOffset - tableChrome
	widths := columnWidths(avail)
	var total float32
	for i, c := range columns {
		total += widths[i]
		// Each column shows its title and its widest value whole.
		if head := textWidth(c.title, true); widths[i] < head {
			t.Errorf("column %q is %.0f px, its title needs %.0f: cut off", c.title, widths[i], head)
		}
		if c.widest != "" && widths[i] < textWidth(c.widest, false) {
			t.Errorf("column %q is %.0f px, %q needs %.0f: cut off", c.title, widths[i], c.widest, textWidth(c.widest, false))
		}
		if c.title == "Key" {
			t.Error("the table still has a Key column: rows differ only by UUID")
		}
	}
	if total > avail+0.5 {
		t.Fatalf("columns take %.0f px, the table has %.0f at the default size: a horizontal scrollbar", total, avail)
	}
	if s := widths[1]; s < 200 {
		t.Errorf("the summary gets %.0f px, want room for a message's text", s)
	}
}

// pressKey sends a key as Fyne's desktop driver does: to the focused
// widget if there is one, else to the window's handler
// (internal/driver/glfw/window.go, processKeyPressed).
func pressKey(c fyne.Canvas, k fyne.KeyName) {
	ev := &fyne.KeyEvent{Name: k}
	if f := c.Focused(); f != nil {
		f.TypedKey(ev)
		return
	}
	if h := c.OnTypedKey(); h != nil {
		h(ev)
	}
}

// tapRow clicks row (the real widget.Table.Tapped: it selects the row and
// gives the table the focus, as a mouse click does on the desktop).
func tapRow(t *testing.T, in *inspector, row int) {
	t.Helper()
	size := in.table.Size()
	for y := float32(1); y < size.Height; y += 4 {
		test.TapAt(in.table, fyne.NewPos(20, y))
		if in.selRow == row {
			return
		}
	}
	t.Fatalf("no point of the table (%v) selects row %d", size, row)
}

func TestDeleteAndEnterActOnARowClickedWithTheMouse(t *testing.T) {
	f := sample()
	a, in := openInspector(t, f, Options{})
	inspect(a, func() { tapRow(t, in, 1) }) // action 6, failed
	waitFor(t, a, "action 6", func() bool { return in.detailTitle.Text == "Action 6 · failed" && !in.retry.Disabled() })
	inspect(a, func() {
		if in.w.Canvas().Focused() == nil {
			t.Fatal("a click on a row left nothing focused: the test does not reproduce the desktop")
		}
		pressKey(in.w.Canvas(), fyne.KeyReturn)
	})
	waitFor(t, a, "the retry", func() bool { return f.called("Retry 6") })
	inspect(a, func() { tapRow(t, in, 4) }) // action 3, queued
	waitFor(t, a, "action 3", func() bool { return in.detailTitle.Text == "Action 3 · queued" && !in.cancel.Disabled() })
	inspect(a, func() { pressKey(in.w.Canvas(), fyne.KeyDelete) })
	waitFor(t, a, "the cancel", func() bool { return f.called("Cancel 3") })
	// The table's own keys still work while it has the focus.
	inspect(a, func() {
		pressKey(in.w.Canvas(), fyne.KeyUp)
		pressKey(in.w.Canvas(), fyne.KeySpace)
	})
	waitFor(t, a, "the row above, selected with the keyboard", func() bool { return in.selRow == 3 })
}

func TestDeleteCancelsAndEnterRetriesTheSelection(t *testing.T) {
	f := sample()
	a, in := openInspector(t, f, Options{})
	press := func(k fyne.KeyName) { pressKey(in.w.Canvas(), k) }
	inspect(a, func() { in.table.Select(widget.TableCellID{Row: 2}) }) // action 5, synced
	waitFor(t, a, "action 5", func() bool { return in.detailTitle.Text == "Action 5 · synced" && in.cancel.Disabled() })
	inspect(a, func() { press(fyne.KeyDelete); press(fyne.KeyReturn) })
	if f.called("Cancel 5") || f.called("Retry 5") {
		t.Fatal("Delete or Enter acted on a synced action")
	}
	inspect(a, func() { in.table.Select(widget.TableCellID{Row: 1}) }) // action 6, failed
	waitFor(t, a, "action 6", func() bool { return in.detailTitle.Text == "Action 6 · failed" && !in.retry.Disabled() })
	inspect(a, func() { press(fyne.KeyReturn) })
	waitFor(t, a, "the retry", func() bool { return f.called("Retry 6") })
	inspect(a, func() { in.table.Select(widget.TableCellID{Row: 4}) }) // action 3, queued
	waitFor(t, a, "action 3", func() bool { return in.detailTitle.Text == "Action 3 · queued" && !in.cancel.Disabled() })
	inspect(a, func() { press(fyne.KeyDelete) })
	waitFor(t, a, "the cancel", func() bool { return f.called("Cancel 3") })
}
