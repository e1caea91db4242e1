package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestOffline(t *testing.T) {
	t.Run("offline, messages queue in the browser; online again, all arrive once and in order", func(t *testing.T) {
		e := newEnv(t, options{})
		sw := e.worker()
		e.setOffline(true, e.ctx, sw)
		e.waitJS("the page says it is offline", `document.getElementById('conn').dataset.state === 'offline'`)

		var keys []string
		for i := range 3 {
			keys = append(keys, e.send(fmt.Sprintf("offline note %d", i)))
		}
		e.waitShown("browser", keys...)
		if got := e.text("#count-browser"); got != "3" {
			t.Fatalf("browser queue count = %q, want 3", got)
		}
		entries := e.outbox()
		if got := keysOf(entries); !slices.Equal(got, keys) {
			t.Fatalf("outbox keys = %q, want %q in order", got, keys)
		}
		for _, en := range entries {
			if en.State != "queued" {
				t.Fatalf("outbox entry %+v, want state queued", en)
			}
		}
		if got := e.appliedKeys(); len(got) != 0 {
			t.Fatalf("upstream holds %q while the browser is offline, want nothing", got)
		}

		e.setOffline(false, sw, e.ctx)
		e.waitApplied(keys...)
		e.waitShown("sent", keys...)
		e.waitJS("the browser queue count drops to 0", `document.getElementById('count-browser').textContent === '0'`)
		if got := e.outbox(); len(got) != 0 {
			t.Fatalf("outbox = %+v, want it empty", got)
		}
		st, err := e.upStore.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Applied != 3 {
			t.Fatalf("upstream stats = %+v, want 3 applied", st)
		}
	})

	t.Run("without SyncManager (?nosync=1) the worker replays when the page comes back online", func(t *testing.T) {
		e := newEnv(t, options{query: "?nosync=1"})
		if got := eval[string](e, `navigator.serviceWorker.controller.scriptURL`); got != e.origin+"/sw.js?nosync=1" {
			t.Fatalf("controller = %q, want the ?nosync=1 worker", got)
		}
		sw := e.worker()
		if evalIn[bool](e, sw, `self.synctray.syncSupported`) {
			t.Fatal("the ?nosync=1 worker thinks it has Background Sync")
		}
		e.setOffline(true, e.ctx, sw)

		key := e.send("queued without SyncManager")
		e.waitShown("browser", key)
		if got := keysOf(e.outbox()); !slices.Equal(got, []string{key}) {
			t.Fatalf("outbox keys = %q, want [%s]", got, key)
		}
		if tags := eval[[]string](e, `navigator.serviceWorker.ready.then((r) => r.sync.getTags())`); len(tags) != 0 {
			t.Fatalf("sync tags = %q, want none: the fallback path must not use Background Sync", tags)
		}

		// The worker's network comes back first: with no sync registered,
		// only the page's 'online' event can start the replay.
		e.setOffline(false, sw)
		e.setOffline(false, e.ctx)
		e.waitApplied(key)
		e.waitShown("sent", key)
	})
}

func TestSyncNow(t *testing.T) {
	t.Run("Sync now replays the browser queue and makes a host working offline sync", func(t *testing.T) {
		// Without SyncManager nothing replays by itself when the worker's
		// network comes back, and in work-offline mode the host does not
		// sync by itself: only the button moves the message.
		e := newEnv(t, options{query: "?nosync=1"})
		e.setWorkOffline(true)
		sw := e.worker()
		e.setOffline(true, sw)
		key := e.send("pushed through by hand")
		e.waitShown("browser", key)
		e.setOffline(false, sw)

		e.do(chromedp.Click(chromedp.ID("sync-now")))
		e.waitApplied(key)
		e.waitShown("sent", key)
		if got := e.outbox(); len(got) != 0 {
			t.Fatalf("outbox = %+v, want it empty", got)
		}
	})
}
