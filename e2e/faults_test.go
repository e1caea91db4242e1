package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
)

func TestHostRefusals(t *testing.T) {
	e := newEnv(t, options{proxy: true})
	regID := e.registrationID()
	e.proxy.unavailable.Store(true) // the host answers 503 to writes

	var kept, big string
	t.Run("a 5xx from the host keeps the entry queued for the next sync", func(t *testing.T) {
		e.in(t)
		kept = e.send("kept through a 503")
		e.waitShown("browser", kept)
		// Chromium fires the sync at once; the replay meets the 503.
		if !poll(func() bool { return e.proxy.refusedBatches.Load() > 0 }) {
			t.Fatal("the worker never tried to replay")
		}
		e.dispatchSync(regID)
		if !poll(func() bool { return e.proxy.refusedBatches.Load() > 1 }) {
			t.Fatal("the dispatched sync did not replay")
		}
		got := e.outbox()
		if len(got) != 1 || got[0].Key != kept || got[0].State != "queued" {
			t.Fatalf("outbox after two 503s = %+v, want %s still queued", got, kept)
		}
		if s := e.shownAs(kept); s.State != "browser" {
			t.Fatalf("page shows %+v, want it queued in the browser", s)
		}
	})

	t.Run("a 4xx for one action marks that entry failed and the page shows why; the rest goes through", func(t *testing.T) {
		e.in(t)
		// The host takes payloads up to 256 KiB: this one it refuses for good.
		big = e.send(strings.Repeat("x", 300<<10))
		e.waitShown("browser", big)

		e.proxy.unavailable.Store(false)
		e.dispatchSync(regID)
		e.waitApplied(kept)
		e.waitShown("failed", big)

		got := e.outbox()
		if len(got) != 1 || got[0].Key != big || got[0].State != "failed" || !strings.Contains(got[0].Error, "larger than") {
			t.Fatalf("outbox = %+v, want only %s, failed with the host's reason", got, big)
		}
		if s := e.shownAs(big); !strings.Contains(s.Reason, "larger than") {
			t.Fatalf("page shows %+v, want the reason the host gave", s)
		}
		e.waitShown("sent", kept)
		if got := e.appliedKeys(); len(got) != 1 {
			t.Fatalf("upstream holds %q, want only %s", got, kept)
		}
	})

	t.Run("a refused entry stays until the user dismisses it", func(t *testing.T) {
		e.in(t)
		e.dispatchSync(regID) // another replay must not resend or drop it
		if got := e.outbox(); len(got) != 1 || got[0].State != "failed" {
			t.Fatalf("outbox = %+v, want the failed entry kept", got)
		}
		e.do(clickIn(big, "Dismiss"))
		e.waitJS("the dismissed message leaves the list", `!document.querySelector('[data-key="`+big+`"]')`)
		if got := e.outbox(); len(got) != 0 {
			t.Fatalf("outbox = %+v, want it empty after dismissing", got)
		}
	})

	t.Run("when the browser gives up retrying (lastChance), the page says the messages wait in the browser", func(t *testing.T) {
		e.in(t)
		e.proxy.unavailable.Store(true)
		key := e.send("kept after the last chance")
		e.waitShown("browser", key)
		if _, err := chromedp.Call(e.ctx, serviceworker.DispatchSyncEvent, serviceworker.DispatchSyncEventParams{
			Origin: e.origin, RegistrationID: regID, Tag: "outbox", LastChance: true,
		}); err != nil {
			t.Fatal(err)
		}
		e.waitJS("the page tells the user", `!document.getElementById('notice').hidden`)
		if got := e.text("#notice"); !strings.Contains(got, "Automatic retries stopped: 1 message waits in this browser") {
			t.Fatalf("notice = %q, want it to say automatic retries stopped with 1 message waiting", got)
		}
		if got := keysOf(e.outbox()); len(got) != 1 || got[0] != key {
			t.Fatalf("outbox keys = %q, want [%s] kept", got, key)
		}
	})
}
