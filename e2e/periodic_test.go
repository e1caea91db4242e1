package e2e

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"

	"synctray/internal/testsupport"
	"synctray/upstream"
)

func TestPeriodicSync(t *testing.T) {
	t.Run("granted: a periodicsync event refreshes the cached messages and status, which the page shows offline", func(t *testing.T) {
		e := newEnv(t, options{query: "?poll=100", proxy: true, grant: []string{"periodic-background-sync"}})
		e.waitJS("the page chose periodic sync", `document.body.dataset.refresh === 'periodic'`)
		if tags := eval[[]string](e, `navigator.serviceWorker.ready.then((r) => r.periodicSync.getTags())`); !slices.Equal(tags, []string{"refresh"}) {
			t.Fatalf("periodic sync tags = %q, want [refresh]", tags)
		}

		key := testsupport.NewKey()
		if _, err := e.upClient.Send(t.Context(), []upstream.Action{{
			Key: key, Type: "message", Payload: json.RawMessage(`{"text":"fetched in the background"}`), CreatedAt: time.Now(),
		}}); err != nil {
			t.Fatal(err)
		}
		e.waitShown("other", key) // the host has it

		// The page does not poll: at ?poll=100 it would ask five times here.
		before := e.proxy.messagesGets.Load()
		time.Sleep(500 * time.Millisecond)
		if n := e.proxy.messagesGets.Load() - before; n > 1 {
			t.Fatalf("GET /api/messages ran %d times in 500 ms, want no polling with periodic sync", n)
		}

		regID := e.registrationID()
		if _, err := chromedp.Call(e.ctx, serviceworker.DispatchPeriodicSyncEvent, serviceworker.DispatchPeriodicSyncEventParams{
			Origin: e.origin, RegistrationID: regID, Tag: "refresh",
		}); err != nil {
			t.Fatalf("dispatch periodic sync: %v", err)
		}
		// The worker tells the page once its refresh is stored.
		e.waitJS("the page hears of the refresh", `document.getElementById('data-note').textContent.startsWith('Refreshed in the background')`)
		e.waitJS("the data cache holds the new message", `caches.open('synctray-data')
			.then((c) => c.match('/api/messages?limit=100')).then((r) => r && r.json())
			.then((b) => !!b && b.messages.some((m) => m.key === '`+key+`'))`)
		e.waitJS("the data cache holds the status", `caches.open('synctray-data')
			.then((c) => c.match('/api/status')).then((r) => r && r.json()).then((s) => !!s && !!s.counts)`)

		// Offline, a fresh page shows what the worker cached.
		e.stopHost()
		e.reload()
		e.waitShown("other", key)
		e.waitJS("the page says the data is cached", `document.getElementById('data-note').textContent.startsWith('Offline — showing messages from')`)
	})

	t.Run("denied: the page polls /api/messages while visible and stops while hidden", func(t *testing.T) {
		e := newEnv(t, options{query: "?poll=100", proxy: true})
		e.waitJS("the page chose polling", `document.body.dataset.refresh === 'poll'`)
		if tags := eval[[]string](e, `navigator.serviceWorker.ready.then((r) => r.periodicSync.getTags())`); len(tags) != 0 {
			t.Fatalf("periodic sync tags = %q, want none without the permission", tags)
		}
		start := e.proxy.messagesGets.Load()
		if !poll(func() bool { return e.proxy.messagesGets.Load() >= start+3 }) {
			t.Fatalf("GET /api/messages ran %d times, want the page to poll", e.proxy.messagesGets.Load()-start)
		}

		setVisibility(e, "hidden")
		hidden := e.proxy.messagesGets.Load()
		time.Sleep(500 * time.Millisecond)                    // five polling periods
		if n := e.proxy.messagesGets.Load() - hidden; n > 1 { // one may have been in flight
			t.Fatalf("GET /api/messages ran %d times while hidden, want the polling stopped", n)
		}

		setVisibility(e, "visible")
		back := e.proxy.messagesGets.Load()
		if !poll(func() bool { return e.proxy.messagesGets.Load() >= back+2 }) {
			t.Fatal("polling did not resume when the page became visible")
		}
	})
}

// setVisibility makes the page see document.visibilityState as state, with
// a visibilitychange event, as when the tab is hidden or shown.
func setVisibility(e *env, state string) {
	e.t.Helper()
	eval[chromedp.Void](e, `Object.defineProperty(document, 'visibilityState', {value: '`+state+`', configurable: true});
		document.dispatchEvent(new Event('visibilitychange'))`)
}
