package app

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
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
	var total float32
	for _, c := range columns {
		total += c.width
	}
	// 30: the split's handle, the table's padding and its vertical scrollbar (the
	// screenshot showed a horizontal bar at 20).
	if avail := float32(defaultWidth)*splitOffset - 30; total > avail {
		t.Fatalf("columns take %.0f px, the table has %.0f at the default size: a horizontal scrollbar", total, avail)
	}
	for _, c := range columns {
		if c.title == "Key" {
			t.Fatal("the table still has a Key column: rows differ only by UUID")
		}
	}
}

func TestDeleteCancelsAndEnterRetriesTheSelection(t *testing.T) {
	f := sample()
	a, in := openInspector(t, f, Options{})
	press := func(k fyne.KeyName) { in.w.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: k}) }
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
