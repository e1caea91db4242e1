package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"

	"synctray/internal/testsupport/idemserver"
)

// todoApp is a tiny app of someone else's: its own page and its own
// service worker, which loads /synctray/sw-sync.js and then handles its own
// requests; the page uses /synctray/sync.js. ?nows=1: no sync.subscribe
// (so no socket that would ask for a replay); ?nosync=1: the worker
// behaves as where SyncManager is missing; ?module=1: the app's worker is
// a module worker (sw.mjs) that imports /synctray/sw-sync.mjs.
func todoApp() fstest.MapFS {
	return fstest.MapFS{
		"index.html": {Data: []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>todo</title>
<script type="module" src="/app.js"></script></head>
<body><h1>todo</h1></body></html>
`)},
		"app.js": {Data: []byte(`import * as sync from '/synctray/sync.js';

const q = new URLSearchParams(location.search);
window.sync = sync;
window.events = [];
if (!q.has('nows')) sync.subscribe((ev) => window.events.push(ev));

// write sends one request through sync.fetch and describes the answer.
window.write = async (method, path, body, headers = {}) => {
  const init = { method, headers: { 'Content-Type': 'application/json', ...headers } };
  if (body !== null) init.body = body;
  const resp = await sync.fetch(path, init);
  const text = await resp.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: resp.status, key: resp.idempotencyKey, header: resp.headers.get('Idempotency-Key') || '',
    state: resp.headers.get('Synctray-State') || '', json, text };
};

(async () => {
  if (q.has('module')) {
    await navigator.serviceWorker.register('/sw.mjs', { scope: '/', type: 'module', updateViaCache: 'none' });
  } else {
    const url = '/sw.js' + (q.has('nosync') ? '?nosync=1' : '');
    await navigator.serviceWorker.register(url, { scope: '/', updateViaCache: 'none' });
  }
  await navigator.serviceWorker.ready;
  document.documentElement.dataset.ready = 'true';
})();
`)},
		"sw.js": {Data: []byte(`// The app's own worker: synctray's module first, then its own handlers.
importScripts('/synctray/sw-sync.js');

self.addEventListener('install', (event) => event.waitUntil(self.skipWaiting()));
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

// The app answers /own/ itself, writes included: sw-sync.js must leave
// them to it.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.pathname.startsWith('/own/')) {
    event.respondWith(new Response('app worker: ' + event.request.method + ' ' + url.pathname,
      { headers: { 'Content-Type': 'text/plain' } }));
  }
});
`)},
		"sw.mjs": {Data: []byte(`// The app's own worker as an ES module.
import '/synctray/sw-sync.mjs';

self.addEventListener('install', (event) => event.waitUntil(self.skipWaiting()));
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
`)},
		// A dedicated module worker loading the ES-module variant.
		"mw.js": {Data: []byte(`import '/synctray/sw-sync.mjs';
postMessage({ loaded: !!self.synctraySwSync, tag: self.synctraySwSync && self.synctraySwSync.syncTag });
`)},
	}
}

// written is what the page's write() returns.
type written struct {
	Status int             `json:"status"`
	Key    string          `json:"key"`
	Header string          `json:"header"`
	State  string          `json:"state"`
	JSON   json.RawMessage `json:"json"`
	Text   string          `json:"text"`
}

// write sends method path with body (nil: none) and extra headers through
// sync.fetch in the page.
func (e *env) write(method, path string, body any, headers map[string]string) written {
	e.t.Helper()
	b := "null"
	if body != nil { // sent as its JSON text
		j, _ := json.Marshal(body)
		j, _ = json.Marshal(string(j))
		b = string(j)
	}
	h, _ := json.Marshal(headers)
	return eval[written](e, fmt.Sprintf(`write(%q, %q, %s, %s)`, method, path, b, h))
}

// queued is the answer body of a write that did not reach the upstream.
type queued struct {
	Queued string `json:"queued"`
	Key    string `json:"key"`
	Action struct {
		ID    int64  `json:"id"`
		Key   string `json:"key"`
		State string `json:"state"`
	} `json:"action"`
}

func (w written) queued(t testing.TB) queued {
	t.Helper()
	var q queued
	if err := json.Unmarshal(w.JSON, &q); err != nil {
		t.Fatalf("answer %d %s: %v", w.Status, w.Text, err)
	}
	return q
}

// swEntry is an entry of sw-sync.js's IndexedDB queue.
type swEntry struct {
	ID      int64             `json:"id"`
	Key     string            `json:"key"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	State   string            `json:"state"`
	Error   string            `json:"error"`
}

// swQueue reads sw-sync.js's queue straight from IndexedDB, without its
// code (bodies decoded as text).
func (e *env) swQueue() []swEntry {
	e.t.Helper()
	return eval[[]swEntry](e, `(async () => {
	if (!(await indexedDB.databases()).some((d) => d.name === 'synctray-sw-sync')) return [];
	const db = await new Promise((ok, fail) => { const r = indexedDB.open('synctray-sw-sync'); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
	try {
		if (!db.objectStoreNames.contains('outbox')) return [];
		const all = await new Promise((ok, fail) => { const q = db.transaction('outbox').objectStore('outbox').getAll(); q.onsuccess = () => ok(q.result); q.onerror = () => fail(q.error); });
		return all.map((x) => ({ ...x, body: new TextDecoder().decode(x.body) }));
	} finally { db.close(); }
})()`)
}

// states returns the states sync.subscribe reported for key, in order.
func (e *env) states(key string) []string {
	e.t.Helper()
	return eval[[]string](e, fmt.Sprintf(`window.events.filter((ev) => ev.type === 'action' && ev.key === %q).map((ev) => ev.state)`, key))
}

// waitIdem waits until the idempotent backend has applied exactly the
// keys want, in this order, each once.
func (e *env) waitIdem(want ...string) []idemserver.Record {
	e.t.Helper()
	var got []idemserver.Record
	ok := poll(func() bool {
		got = e.idem.Applied()
		return len(got) >= len(want)
	})
	var keys []string
	for _, r := range got {
		keys = append(keys, r.Key)
	}
	if !ok || !slices.Equal(keys, want) {
		e.t.Fatalf("the backend applied %q, want %q (each once, in order)", keys, want)
	}
	return got
}

// replayOnSync starts the host again and fires the worker's Background
// Sync: the backend must apply exactly keys, in order, each once, and the
// browser's queue be empty; a second sync sends nothing again. It returns
// what the backend applied.
func (e *env) replayOnSync(regID serviceworker.RegistrationID, keys ...string) []idemserver.Record {
	e.t.Helper()
	e.startHost()
	e.dispatchSyncTag(regID, "synctray-upstream")
	recs := e.waitIdem(keys...)
	if !poll(func() bool { return len(e.swQueue()) == 0 }) {
		e.t.Fatalf("browser queue = %+v after the replay, want it empty", e.swQueue())
	}
	e.dispatchSyncTag(regID, "synctray-upstream")
	for k, n := range e.idem.CountByKey() {
		if n != 1 {
			e.t.Fatalf("the backend applied %s %d times, want once", k, n)
		}
	}
	return recs
}

// Keys an app chose itself (the host takes any UUID).
const (
	appKey    = "0190a000-0000-7000-8000-0000000000a1"
	reusedKey = "0190a000-0000-7000-8000-0000000000a2"
)

func isUUIDv7(k string) bool {
	return len(k) == 36 && k[14] == '7' && strings.Count(k, "-") == 4
}

func TestModules(t *testing.T) {
	t.Run("the app's own worker keeps its own requests; sw-sync.mjs loads in a module worker", func(t *testing.T) {
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true})
		for _, m := range []string{"GET", "POST", "DELETE"} {
			got := eval[string](e, `fetch('/own/thing', {method: '`+m+`'}).then((r) => r.text())`)
			if want := "app worker: " + m + " /own/thing"; got != want {
				t.Errorf("%s /own/thing = %q, want %q (the app's own handler)", m, got, want)
			}
		}
		if n := e.idem.Requests(); n != 0 {
			t.Errorf("the backend saw %d requests, want none", n)
		}
		got := eval[map[string]any](e, `new Promise((ok, fail) => {
			const w = new Worker('/mw.js', { type: 'module' });
			w.onmessage = (m) => ok(m.data);
			w.onerror = (err) => fail(new Error('module worker: ' + (err.message || 'failed to load')));
		})`)
		if got["loaded"] != true || got["tag"] != "synctray-upstream" {
			t.Fatalf("module worker says %v, want sw-sync.mjs loaded", got)
		}
	})

	t.Run("upstream down: the write is queued on the host, replayed once when it is back, and subscribe sees queued then synced", func(t *testing.T) {
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true})
		e.waitJS("sync.subscribe got the host's status", `window.events.some((ev) => ev.type === 'status' && ev.status.state)`)
		e.idem.SetFault(&idemserver.Fault{Status: 503})

		w := e.write("POST", "/upstream/todos", map[string]any{"title": "milk"}, map[string]string{"Prefer": "wait=1"})
		q := w.queued(t)
		if w.Status != 202 || q.Queued != "host" || w.State != "queued" {
			t.Fatalf("write while the upstream answers 503 = %d %s (state %q), want 202 queued on the host", w.Status, w.Text, w.State)
		}
		if !isUUIDv7(w.Key) || w.Header != w.Key || q.Action.Key != w.Key {
			t.Fatalf("key %q, header %q, action key %q: want one UUIDv7 made by sync.fetch", w.Key, w.Header, q.Action.Key)
		}
		if n := len(e.idem.Applied()); n != 0 {
			t.Fatalf("the backend applied %d writes while it answered 503", n)
		}

		e.idem.SetFault(nil)
		recs := e.waitIdem(w.Key)
		if recs[0].Method != "POST" || recs[0].Path != "/todos" || recs[0].Body != `{"title":"milk"}` {
			t.Fatalf("the backend got %+v, want POST /todos {\"title\":\"milk\"}", recs[0])
		}
		e.waitJS("subscribe sees the action synced with the upstream's answer", fmt.Sprintf(
			`window.events.some((ev) => ev.type === 'action' && ev.key === %q && ev.state === 'synced' && ev.answer && ev.answer.status === 201)`, w.Key))
		states := e.states(w.Key)
		if states[0] != "queued" || !slices.Contains(states, "syncing") || states[len(states)-1] != "synced" {
			t.Fatalf("subscribe saw states %q, want queued first, syncing, and synced last", states)
		}
		if n := e.idem.CountByKey()[w.Key]; n != 1 {
			t.Fatalf("the backend applied the write %d times, want once", n)
		}
	})

	t.Run("host down: writes are queued in the browser and replayed once, in order, with their keys, on Background Sync", func(t *testing.T) {
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true, query: "?nows=1"})
		if !evalIn[bool](e, e.worker(), `self.synctraySwSync.syncSupported`) {
			t.Fatal("the worker has no Background Sync")
		}
		regID := e.registrationID()
		e.stopHost()

		a := e.write("POST", "/upstream/todos", map[string]any{"title": "a"}, nil)
		b := e.write("PUT", "/upstream/todos/7", map[string]any{"title": "b"}, map[string]string{"If-Match": `"v1"`, "X-Not-Kept": "1"})
		c := e.write("DELETE", "/upstream/todos/3?hard=1", nil, map[string]string{"Idempotency-Key": appKey})
		for _, w := range []written{a, b, c} {
			if q := w.queued(t); w.Status != 202 || q.Queued != "browser" || q.Key != w.Key || w.Header != w.Key {
				t.Fatalf("write with the host down = %d %s (key %q, header %q), want 202 queued in the browser with its key", w.Status, w.Text, w.Key, w.Header)
			}
		}
		if !isUUIDv7(a.Key) || !isUUIDv7(b.Key) || c.Key != appKey {
			t.Fatalf("keys %q %q %q: want two UUIDv7s and the app's own", a.Key, b.Key, c.Key)
		}
		q := e.swQueue()
		if len(q) != 3 || q[0].Key != a.Key || q[1].Key != b.Key || q[2].Key != c.Key {
			t.Fatalf("browser queue = %+v, want a, b, c in order", q)
		}
		if q[1].Method != "PUT" || q[1].URL != e.origin+"/upstream/todos/7" || q[1].Body != `{"title":"b"}` ||
			q[1].Headers["If-Match"] != `"v1"` || q[1].Headers["Content-Type"] != "application/json" || q[1].Headers["X-Not-Kept"] != "" {
			t.Fatalf("queued PUT = %+v, want method, URL, body and only the kept headers", q[1])
		}
		if tags := eval[[]string](e, `navigator.serviceWorker.ready.then((r) => r.sync.getTags())`); !slices.Contains(tags, "synctray-upstream") {
			t.Fatalf("sync tags = %q, want synctray-upstream registered", tags)
		}

		recs := e.replayOnSync(regID, a.Key, b.Key, c.Key)
		if recs[1].Method != "PUT" || recs[1].Path != "/todos/7" || recs[1].Header.Get("If-Match") != `"v1"` || recs[1].Body != `{"title":"b"}` {
			t.Fatalf("the backend got %+v, want the PUT with its If-Match and body", recs[1])
		}
		if recs[2].Method != "DELETE" || recs[2].Path != "/todos/3?hard=1" {
			t.Fatalf("the backend got %+v, want DELETE /todos/3?hard=1", recs[2])
		}
	})

	t.Run("the host answers 503 or 429: the write is kept in the browser and replayed once, in order, when the host takes writes again", func(t *testing.T) {
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true, proxy: true, query: "?nows=1"})
		regID := e.registrationID()
		var ws []written
		for _, status := range []int32{503, 429} {
			e.proxy.upstreamStatus.Store(status)
			w := e.write("POST", "/upstream/todos", map[string]any{"title": fmt.Sprint(status)}, nil)
			if q := w.queued(t); w.Status != 202 || q.Queued != "browser" || q.Key != w.Key {
				t.Fatalf("write while the host answers %d = %d %s, want 202 queued in the browser with its key", status, w.Status, w.Text)
			}
			ws = append(ws, w)
		}
		if q := e.swQueue(); len(q) != 2 || q[0].Key != ws[0].Key || q[1].Key != ws[1].Key {
			t.Fatalf("browser queue = %+v, want the two writes in order", q)
		}
		if n := e.idem.Requests(); n != 0 {
			t.Fatalf("the backend saw %d requests while the host refused writes, want none", n)
		}
		// Still refused: a replay keeps everything for the next trigger.
		e.dispatchSyncTag(regID, "synctray-upstream")
		if q := e.swQueue(); len(q) != 2 {
			t.Fatalf("browser queue = %+v after a replay the host refused, want both writes kept", q)
		}
		e.proxy.upstreamStatus.Store(0)
		e.dispatchSyncTag(regID, "synctray-upstream")
		recs := e.waitIdem(ws[0].Key, ws[1].Key)
		if recs[0].Body != `{"title":"503"}` || recs[1].Body != `{"title":"429"}` {
			t.Fatalf("the backend got %+v, want the two writes in order", recs)
		}
		if !poll(func() bool { return len(e.swQueue()) == 0 }) {
			t.Fatalf("browser queue = %+v after the replay, want it empty", e.swQueue())
		}
		e.dispatchSyncTag(regID, "synctray-upstream")
		for k, n := range e.idem.CountByKey() {
			if n != 1 {
				t.Fatalf("the backend applied %s %d times, want once", k, n)
			}
		}
	})

	t.Run("a module service worker with sw-sync.mjs: host down, queued in the browser, replayed once on Background Sync", func(t *testing.T) {
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true, query: "?nows=1&module=1"})
		// The browser may still hold an earlier test's worker for this
		// origin (a port used again): the module one takes over.
		e.waitJS("the app's module worker in control", `navigator.serviceWorker.controller && navigator.serviceWorker.controller.scriptURL === location.origin + '/sw.mjs'`)
		if !evalIn[bool](e, e.worker(), `self.synctraySwSync.syncSupported`) {
			t.Fatal("the module worker has no Background Sync")
		}
		regID := e.registrationID()
		e.stopHost()
		a := e.write("POST", "/upstream/todos", map[string]any{"title": "a"}, nil)
		b := e.write("PATCH", "/upstream/todos/7", map[string]any{"done": true}, nil)
		for _, w := range []written{a, b} {
			if q := w.queued(t); w.Status != 202 || q.Queued != "browser" || q.Key != w.Key {
				t.Fatalf("write with the host down = %d %s, want 202 queued in the browser with its key", w.Status, w.Text)
			}
		}
		if q := e.swQueue(); len(q) != 2 || q[0].Key != a.Key || q[1].Key != b.Key {
			t.Fatalf("browser queue = %+v, want a, b in order", q)
		}
		recs := e.replayOnSync(regID, a.Key, b.Key)
		if recs[1].Method != "PATCH" || recs[1].Path != "/todos/7" || recs[1].Body != `{"done":true}` {
			t.Fatalf("the backend got %+v, want the PATCH with its body", recs[1])
		}
	})

	t.Run("replays started at once (two syncs, page messages) send each queued write once", func(t *testing.T) {
		// Without the replay flag and lock, two drains read the same
		// oldest entry and both send it: the proxy counts what the host took.
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true, proxy: true, query: "?nows=1"})
		regID := e.registrationID()
		e.stopHost()
		var keys []string
		for i := range 20 {
			w := e.write("POST", "/upstream/notes", map[string]any{"n": i}, nil)
			if w.Status != 202 || w.queued(t).Queued != "browser" {
				t.Fatalf("write %d with the host down = %d %s, want 202 queued in the browser", i, w.Status, w.Text)
			}
			keys = append(keys, w.Key)
		}
		e.startHost()
		eval[chromedp.Void](e, `(() => { for (let i = 0; i < 3; i++) navigator.serviceWorker.controller.postMessage({type: 'synctray-replay'}); })()`)
		e.dispatchSyncTag(regID, "synctray-upstream")
		e.dispatchSyncTag(regID, "synctray-upstream")
		e.waitIdem(keys...)
		if !poll(func() bool { return len(e.swQueue()) == 0 }) {
			t.Fatalf("browser queue = %+v after the replay, want it empty", e.swQueue())
		}
		got := e.proxy.replayedKeys()
		for _, k := range keys {
			if got[k] != 1 {
				t.Fatalf("the host took %d replays of %s, want exactly 1 (all: %v)", got[k], k, got)
			}
		}
	})

	t.Run("host down without SyncManager: the page's socket coming back replays; a refused entry fails and does not block the next", func(t *testing.T) {
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true, query: "?nosync=1"})
		if evalIn[bool](e, e.worker(), `self.synctraySwSync.syncSupported`) {
			t.Fatal("the ?nosync=1 worker thinks it has Background Sync")
		}
		e.waitJS("sync.subscribe got the host's status", `window.events.some((ev) => ev.type === 'status')`)
		// A key the host already holds for another request: replayed with
		// a new body, the host refuses it (422 key_conflict).
		first := e.write("POST", "/upstream/todos", map[string]any{"title": "first"}, map[string]string{"Idempotency-Key": reusedKey})
		if first.Status != 201 || first.State != "synced" {
			t.Fatalf("write while all is up = %d %s (state %q), want the upstream's 201", first.Status, first.Text, first.State)
		}
		e.stopHost()
		bad := e.write("POST", "/upstream/todos", map[string]any{"title": "other"}, map[string]string{"Idempotency-Key": reusedKey})
		good := e.write("POST", "/upstream/todos", map[string]any{"title": "after"}, nil)
		for _, w := range []written{bad, good} {
			if w.Status != 202 || w.queued(t).Queued != "browser" {
				t.Fatalf("write with the host down = %d %s, want 202 queued in the browser", w.Status, w.Text)
			}
		}
		e.waitJS("subscribe saw both queued in the browser", fmt.Sprintf(
			`[%q, %q].every((k) => window.events.some((ev) => ev.type === 'queued-in-browser' && ev.key === k))`, bad.Key, good.Key))
		if tags := eval[[]string](e, `navigator.serviceWorker.ready.then((r) => r.sync.getTags())`); len(tags) != 0 {
			t.Fatalf("sync tags = %q, want none without SyncManager", tags)
		}

		e.startHost()
		e.waitIdem(reusedKey, good.Key)
		e.waitJS("subscribe saw the reused key refused in the browser", `window.events.some((ev) => ev.type === 'failed-in-browser' && ev.key === '`+reusedKey+`' && ev.status === 422)`)
		var q []swEntry
		if !poll(func() bool { q = e.swQueue(); return len(q) == 1 }) || q[0].Key != reusedKey || q[0].State != "failed" || q[0].Error == "" {
			t.Fatalf("browser queue = %+v, want only the refused entry, failed with a reason", q)
		}
		if n := e.idem.CountByKey()[good.Key]; n != 1 {
			t.Fatalf("the backend applied the later write %d times, want once", n)
		}
	})

	t.Run("without SyncManager and with no page to ask: the worker's own timer replays once the host is back", func(t *testing.T) {
		// ?nows=1: the page opens no socket, so nothing of the page's asks
		// for a replay; only the worker's retry timer (5 s first) can.
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true, query: "?nosync=1&nows=1"})
		if evalIn[bool](e, e.worker(), `self.synctraySwSync.syncSupported`) {
			t.Fatal("the ?nosync=1 worker thinks it has Background Sync")
		}
		e.stopHost()
		w := e.write("POST", "/upstream/todos", map[string]any{"title": "timer"}, nil)
		if q := w.queued(t); w.Status != 202 || q.Queued != "browser" {
			t.Fatalf("write with the host down = %d %s, want 202 queued in the browser", w.Status, w.Text)
		}
		e.startHost()
		e.waitIdem(w.Key)
		if !poll(func() bool { return len(e.swQueue()) == 0 }) {
			t.Fatalf("browser queue = %+v after the timer's replay, want it empty", e.swQueue())
		}
		if n := e.idem.CountByKey()[w.Key]; n != 1 {
			t.Fatalf("the backend applied the write %d times, want once", n)
		}
	})

	t.Run("a write the upstream refuses (422) fails, visibly through subscribe, and the next one goes through", func(t *testing.T) {
		e := newEnv(t, options{assets: todoApp(), httpUpstream: true})
		e.waitJS("sync.subscribe got the host's status", `window.events.some((ev) => ev.type === 'status')`)
		bad := e.write("POST", "/upstream/todos", map[string]any{"title": "invalid"}, nil)
		if bad.Status != 422 || bad.State != "failed" || !strings.Contains(bad.Text, "title is required") {
			t.Fatalf("refused write = %d %s (state %q), want the upstream's own 422", bad.Status, bad.Text, bad.State)
		}
		good := e.write("PATCH", "/upstream/todos/1", map[string]any{"done": true}, nil)
		if good.Status != 200 || good.State != "synced" {
			t.Fatalf("next write = %d %s (state %q), want the upstream's 200", good.Status, good.Text, good.State)
		}
		e.waitJS("subscribe sees the refused write failed with the upstream's 422", fmt.Sprintf(
			`window.events.some((ev) => ev.type === 'action' && ev.key === %q && ev.state === 'failed' && ev.answer && ev.answer.status === 422)`, bad.Key))
		e.waitJS("subscribe sees the next one synced", fmt.Sprintf(
			`window.events.some((ev) => ev.type === 'action' && ev.key === %q && ev.state === 'synced')`, good.Key))
		recs := e.waitIdem(good.Key)
		if recs[0].Method != "PATCH" || recs[0].Path != "/todos/1" {
			t.Fatalf("the backend applied %+v, want only the PATCH", recs[0])
		}
		if st := eval[map[string]any](e, `sync.status()`); st["state"] == nil {
			t.Fatalf("sync.status() = %v, want the host's status", st)
		}
	})
}
