package e2e

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestBackgroundSync(t *testing.T) {
	t.Run("a message posted while the host is down is queued in IndexedDB and a dispatched sync event replays it", func(t *testing.T) {
		e := newEnv(t, options{})
		regID := e.registrationID()
		e.stopHost()

		key := e.send("written while the host was down")
		e.waitShown("browser", key)
		if got := e.outbox(); len(got) != 1 || got[0].Key != key || got[0].State != "queued" || got[0].Type != "message" {
			t.Fatalf("outbox = %+v, want one queued message with key %s", got, key)
		}
		if got := e.text("#count-browser"); got != "1" {
			t.Fatalf("browser queue count = %q, want 1", got)
		}

		// No page is left to nudge the worker: only the sync event can replay.
		e.do(chromedp.Navigate("about:blank"))
		e.startHost()
		e.dispatchSync(regID)
		e.waitApplied(key)

		e.open()
		e.waitShown("sent", key)
		if got := e.outbox(); len(got) != 0 {
			t.Fatalf("outbox after the replay = %+v, want it empty", got)
		}
	})

	t.Run("Chromium fires the sync itself when the worker's network comes back", func(t *testing.T) {
		e := newEnv(t, options{})
		sw := e.worker()
		e.setOffline(true, e.ctx, sw)

		key := e.send("written offline")
		e.waitShown("browser", key)
		if tags := eval[[]string](e, `navigator.serviceWorker.ready.then((r) => r.sync.getTags())`); !slices.Equal(tags, []string{"outbox"}) {
			t.Fatalf("sync tags = %q, want [outbox]", tags)
		}

		// The page stays offline, so it cannot trigger the replay.
		e.setOffline(false, sw)
		e.waitApplied(key)
	})

	t.Run("two sync events and a page-triggered replay at once send each message once", func(t *testing.T) {
		e := newEnv(t, options{proxy: true})
		regID := e.registrationID()
		e.stopHost()
		var keys []string
		for i := range 5 {
			keys = append(keys, e.send(fmt.Sprintf("message %d", i)))
		}
		e.waitShown("browser", keys...)
		if got := keysOf(e.outbox()); !slices.Equal(got, keys) {
			t.Fatalf("outbox keys = %q, want %q in order", got, keys)
		}

		e.startHost()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { e.dispatchSync(regID) })
		}
		wg.Go(func() {
			eval[chromedp.Void](e, `navigator.serviceWorker.controller.postMessage({type: 'replay'})`)
		})
		wg.Wait()

		e.waitApplied(keys...)
		e.waitShown("sent", keys...)
		acked, order := e.proxy.ackedKeys()
		for _, k := range keys {
			if acked[k] != 1 {
				t.Errorf("the worker sent %s to the host in %d acknowledged batches, want 1 (all: %v)", k, acked[k], acked)
			}
		}
		if !slices.Equal(order, keys) {
			t.Errorf("the host got %q, want %q in order", order, keys)
		}
		if got := e.outbox(); len(got) != 0 {
			t.Fatalf("outbox after the replay = %+v, want it empty", got)
		}
	})
}
