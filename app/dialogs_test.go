package app

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
)

func TestWhenTheBrowserCannotStartOpenSynctrayShowsTheLinkWithACopyButton(t *testing.T) {
	f := newFakeHost()
	tr := &fakeTray{}
	a := startApp(t, f, Options{Tray: tr, OpenURL: func(string) error {
		return errors.New("xdg-open exited 4: no method available for opening")
	}})
	var open func()
	inspect(a, func() { open = item(tr.menu, LabelOpen).Action })
	open() // as the tray menu does

	link := f.LoginURL()
	waitFor(t, a, "the link window", func() bool { return a.link != nil && a.link.link.Text == link })
	inspect(a, func() {
		lw := a.link
		if lw.w.Title() != TitleOpenLink {
			t.Errorf("window title %q, want %q", lw.w.Title(), TitleOpenLink)
		}
		if !strings.Contains(lw.why.Text, "xdg-open exited 4") || !strings.Contains(lw.why.Text, "Open this one-time link in your browser") {
			t.Errorf("the window says %q: want why, and what to do", lw.why.Text)
		}
		if got := a.fa.Clipboard().Content(); got == link {
			t.Fatalf("the link is on the clipboard before Copy was pressed")
		}
		test.Tap(lw.copy)
		if got := a.fa.Clipboard().Content(); got != link {
			t.Errorf("clipboard %q after Copy, want the link %q", got, link)
		}
		if lw.copy.Text != LabelCopied {
			t.Errorf("the Copy button says %q after a copy, want %q", lw.copy.Text, LabelCopied)
		}
	})
	// Asking again reuses the one window.
	open()
	waitFor(t, a, "the Copy button reset", func() bool { return a.link != nil && a.link.copy.Text == LabelCopyLink })
	inspect(a, func() {
		n := 0
		for _, w := range a.fa.Driver().AllWindows() {
			if w.Title() == TitleOpenLink {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d link windows, want one", n)
		}
	})
}

func TestAStartupErrorIsShownInAWindowThatClosesWithTheApp(t *testing.T) {
	fa := test.NewTempApp(t)
	err := fmt.Errorf("open the outbox: %w", errors.New("the data dir /home/u/.local/share/synctray is not writable: fix its permissions or pass --data-dir"))
	w := ShowStartupError(fa, err)
	found := false
	for _, x := range fa.Driver().AllWindows() {
		found = found || x == w
	}
	if !found {
		t.Fatal("ShowStartupError made no window")
	}
	if w.Title() != TitleStartupError {
		t.Errorf("title %q, want %q", w.Title(), TitleStartupError)
	}
	sw := newStartupErrorWindow(fa, err)
	if sw.message.Text != err.Error() {
		t.Errorf("the window says %q, want the error %q", sw.message.Text, err.Error())
	}
	if f := sw.w.Canvas().Focused(); f != sw.close {
		t.Errorf("focused %T, want the Close button (Enter or Space closes it)", f)
	}
	closed := false
	sw.w.SetOnClosed(func() { closed = true })
	test.Tap(sw.close)
	if !closed {
		t.Error("Close did not close the window")
	}
}
