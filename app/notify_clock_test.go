package app

import (
	"testing"
	"time"

	"synctray/localserver/clock"
)

func TestTheNotificationWindowRunsOnTheInjectedClock(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	type note struct{ title, body string }
	got := make(chan note, 4)
	n := newNotifier(2*time.Second, clk, func(n Notification) { got <- note{n.Title, n.Body} })
	defer n.stop()
	for _, text := range []string{"first", "second", "third"} {
		n.add("message", 1, text)
	}
	select {
	case x := <-got:
		t.Fatalf("notified %q before the window closed", x.title)
	default:
	}
	clk.Advance(2 * time.Second)
	select {
	case x := <-got:
		if x.title != "3 new messages" || x.body != "first …" {
			t.Fatalf("notification %q / %q, want one for the burst of 3", x.title, x.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after the window closed")
	}
}
