package app

import (
	"testing"
	"time"
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
	if avail := float32(defaultWidth)*splitOffset - 20; total > avail { // 20: the split's handle and padding
		t.Fatalf("columns take %.0f px, the table has %.0f at the default size: a horizontal scrollbar", total, avail)
	}
	for _, c := range columns {
		if c.title == "Key" {
			t.Fatal("the table still has a Key column: rows differ only by UUID")
		}
	}
}
