package localserver_test

import (
	"net/http"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/clock"
	"synctray/localserver/outbox"
)

// The host has one clock: these parts are tested by moving it, not by
// sleeping.
func TestTheHostRunsOnItsOneClock(t *testing.T) {
	t.Run("synced actions are pruned after the retention", func(t *testing.T) {
		clk := clock.NewFake(time.Now().Truncate(time.Second))
		e := startHost(t, localserver.Config{Clock: clk, Retention: 24 * time.Hour})
		_, a := e.post(testsupport.NewKey(), "message", `{"text":"old"}`)
		testsupport.WaitFor(t, "synced", func() bool { return e.get(a.ID).State == outbox.Synced })
		clk.Advance(23 * time.Hour) // the hourly prune runs, but the action is younger than a day
		resp, _ := e.req("GET", "/api/actions/"+itoa(a.ID), nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("action pruned before the retention: %d", resp.StatusCode)
		}
		// The loop re-arms its hourly timer after each prune: move the clock
		// an hour at a time until it has run past the retention.
		testsupport.WaitFor(t, "the action to be pruned", func() bool {
			clk.Advance(time.Hour)
			resp, _ := e.req("GET", "/api/actions/"+itoa(a.ID), nil, nil)
			return resp.StatusCode == http.StatusNotFound
		})
	})

	t.Run("login links expire after 15 minutes of the host's clock", func(t *testing.T) {
		clk := clock.NewFake(time.Now().Truncate(time.Second))
		e := startHost(t, localserver.Config{Clock: clk})
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		stale := e.host.LoginURL()
		fresh := e.host.LoginURL()
		clk.Advance(14 * time.Minute)
		resp, err := noRedirect.Get(fresh)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("a 14-minute-old link = %d, want 303 to the app", resp.StatusCode)
		}
		clk.Advance(2 * time.Minute)
		resp, err = noRedirect.Get(stale)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a 16-minute-old link = %d, want 403", resp.StatusCode)
		}
	})
}
