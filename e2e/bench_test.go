package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"synctray/internal/testsupport"
)

// BenchmarkReplay1000 measures the service worker's replay of a large
// browser queue: 1,000 messages wait in IndexedDB behind a pending sync
// registration while the worker is offline; the clock runs from the moment
// its network comes back (Chromium then fires the sync by itself) until the
// upstream holds all 1,000. The design's target is well under a second.
func BenchmarkReplay1000(b *testing.B) {
	const n = 1000
	e := newEnv(b, options{})
	sw := e.worker()
	// Background Sync needs a window of the origin, but not the app: with
	// no app page open nothing else triggers a replay and nothing redraws.
	e.do(chromedp.Navigate(e.origin + "/healthz"))

	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		keys := make([]string, n)
		for i := range keys {
			keys[i] = testsupport.NewKey()
		}
		e.setOffline(true, sw)
		queueInWorker(e, sw, keys)
		before := appliedCount(e)

		b.StartTimer()
		start := time.Now()
		liftOffline(e, sw)
		for appliedCount(e) < before+n {
			if time.Since(start) > wait {
				b.Fatalf("after %v the upstream holds %d of %d replayed messages", wait, appliedCount(e)-before, n)
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()

		if left := evalIn[int](e, sw, `self.synctrayOutbox.counts().then((c) => c.queued + c.failed)`); left != 0 {
			b.Fatalf("%d entries left in the browser queue after the replay, want 0", left)
		}
		b.StartTimer()
	}
	if got, want := appliedCount(e), int64(n*b.N); got != want {
		b.Fatalf("upstream applied %d, want %d: each message exactly once", got, want)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/1000msgs")
}

// queueInWorker writes keys as queued messages into the worker's IndexedDB
// outbox in one transaction, and registers the 'outbox' sync, as the
// worker does when the host is unreachable.
func queueInWorker(e *env, sw context.Context, keys []string) {
	e.t.Helper()
	k, _ := json.Marshal(keys)
	evalIn[chromedp.Void](e, sw, `(async (keys) => {
		const db = await new Promise((ok, fail) => { const r = indexedDB.open('synctray', 1); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
		await new Promise((ok, fail) => {
			const tx = db.transaction('outbox', 'readwrite');
			const store = tx.objectStore('outbox');
			keys.forEach((key, i) => store.add({ key, type: 'message', payload: { text: 'bench ' + i }, created: Date.now(), state: 'queued' }));
			tx.oncomplete = ok;
			tx.onerror = () => fail(tx.error);
		});
		db.close();
		await self.registration.sync.register('outbox');
	})(`+string(k)+`)`)
}

// liftOffline ends the offline emulation on a target by disabling its
// network domain, which also stops the network events that would slow the
// replay down.
func liftOffline(e *env, target context.Context) {
	e.t.Helper()
	if err := chromedp.Do(target, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		return t.Call(ctx, "Network.disable", map[string]any{}, nil)
	})); err != nil {
		e.t.Fatalf("lift offline: %v", err)
	}
}

func appliedCount(e *env) int64 {
	e.t.Helper()
	st, err := e.upStore.Stats(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Applied
}
