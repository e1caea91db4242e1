// sw-sync.js: durable /upstream/ writes for any app's own service worker.
//
//   // your sw.js (a classic worker), first line:
//   importScripts('/synctray/sw-sync.js');
//   // a module worker instead: import '/synctray/sw-sync.mjs';
//
// Loading it is enough. A write (POST, PUT, PATCH, DELETE) a page sends to
// /upstream/... goes to the synctray host as it is (with an Idempotency-Key:
// one is added, a UUIDv7, when the request has none). When the host cannot
// take it — a network error, a timeout, or a transient status by the one
// failure policy (sync-policy.js: 408, 425, 429, 5xx) that is not the host's
// own answer about a stored action — the write is stored in IndexedDB
// (database "synctray-sw-sync": key, method, URL, the headers the host keeps
// and the body bytes) and the page gets
//   202 {"queued": "browser", "key": "<Idempotency-Key>"}
// with the key also in the Idempotency-Key header; open pages get the
// message {type: 'queued-in-browser', key, reason, source: 'sw-sync'}.
//
// Stored writes are replayed to the host oldest first, each once: to the
// same /upstream/ URL with the same key and Prefer: respond-async. An entry
// is deleted only when the host holds it (2xx, usually 202, or any answer
// carrying Synctray-Action). A refusal (another 4xx, e.g. 422 key_conflict)
// marks that entry failed, tells pages {type: 'failed-in-browser', key,
// status, error, source: 'sw-sync'} and the replay goes on with the next
// one; a transient answer or a network error stops the replay and keeps
// everything for the next trigger. Triggers: Background Sync (tag
// 'synctray-upstream'), a page's message {type: 'synctray-replay'} (sync.js
// sends it on 'online' and when it sees the host again), the worker's start
// and, where SyncManager is missing, a timer while the worker lives. Two
// replays at once never send an entry twice (sw-core.js: a promise flag and
// the Web Lock 'synctray-sw-sync-replay').
//
// Event order: a worker's listeners for one event run in the order they
// were added, and the first to call event.respondWith() answers the
// request. importScripts runs this file where the call stands, so put it
// before your own addEventListener('fetch', ...): this listener then sees
// every request first, calls respondWith only for the /upstream/ writes it
// owns (never for navigations), and returns without touching any other
// request, which your listeners then handle as if it were not here. (A
// listener of yours added earlier that answers /upstream/ writes itself
// wins; this one then stands aside.) It adds no install/activate, cache,
// push or message handlers of its own, besides its 'synctray-replay'
// message and its sync tag.
//
// ?nosync=1 on the worker's URL (a test hook) behaves as where SyncManager
// is missing.
'use strict';

if (!self.synctraySwCore) {
  // A classic worker: load the shared pieces. (sw-sync.mjs imports them
  // before this file, and importScripts does not exist in module workers.)
  importScripts('/synctray/sync-policy.js', '/synctray/idb.js', '/synctray/uuid7.js', '/synctray/sw-core.js');
}

(() => {
  if (self.synctraySwSync) return; // loaded twice

  const PREFIX = '/upstream/';
  const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
  // The request headers the host keeps with a write (httpup.StoredHeaders).
  const KEPT = ['Content-Type', 'Accept', 'If-Match', 'If-None-Match', 'If-Unmodified-Since'];
  const SYNC_TAG = 'synctray-upstream';
  const SOURCE = 'sw-sync';
  // How long a write may take at the host before it counts as unreachable:
  // the host itself waits up to the request's Prefer: wait (default 5 s).
  const MIN_TIMEOUT_MS = 10000;
  const RETRY_MS = 5000; // the first retry without SyncManager

  const { TransientError, tellPages, jsonResponse } = self.synctraySwCore;
  const policy = self.synctrayPolicy;
  const store = self.synctrayIDB.open('synctray-sw-sync');
  const uuidv7 = self.synctrayUUID.uuidv7;

  const NOSYNC = new URL(self.location.href).searchParams.has('nosync');
  const syncSupported = !NOSYNC && 'SyncManager' in self && !!(self.registration && self.registration.sync);

  function owns(req) {
    if (!WRITES.has(req.method) || req.mode === 'navigate') return false;
    const url = new URL(req.url);
    return url.origin === self.location.origin && url.pathname.startsWith(PREFIX);
  }

  self.addEventListener('fetch', (event) => {
    if (!owns(event.request)) return; // everything else: the app's own handlers
    try {
      event.respondWith(write(event.request));
    } catch {
      // An earlier listener already answered it: leave it to that one.
    }
  });

  function timeoutFor(req) {
    const m = /(?:^|[,\s])wait\s*=\s*"?(\d+)/i.exec(req.headers.get('Prefer') || '');
    return Math.max(MIN_TIMEOUT_MS, (m ? Math.min(Number(m[1]), 60) : 5) * 1000 + 5000);
  }

  // hostHolds: the answer is the host's about a stored action (it names
  // one), whatever its status: the upstream's own answer, or a failed or
  // cancelled action. Such a write is never queued again here.
  function hostHolds(resp) {
    return resp.headers.has('Synctray-Action');
  }

  // write sends a page's write to the host; when the host cannot take it
  // now, it is queued here and the page gets a 202 saying so.
  async function write(req) {
    const key = req.headers.get('Idempotency-Key') || uuidv7();
    const headers = new Headers(req.headers);
    headers.set('Idempotency-Key', key);
    const body = await req.arrayBuffer();
    let problem;
    try {
      const resp = await fetch(req.url, {
        method: req.method,
        headers,
        body: body.byteLength ? body : undefined,
        credentials: 'same-origin',
        cache: 'no-store',
        signal: AbortSignal.timeout(timeoutFor(req)),
      });
      if (hostHolds(resp) || policy.classify(resp.status, 'single') !== 'transient') return resp;
      problem = `the host answered ${resp.status}`;
    } catch (err) {
      problem = `the host is unreachable (${err.name === 'TimeoutError' ? 'timed out' : err.message})`;
    }
    const kept = {};
    for (const name of KEPT) {
      const v = req.headers.get(name);
      if (v !== null) kept[name] = v;
    }
    try {
      await store.add({ key, method: req.method, url: req.url, headers: kept, body });
    } catch (err) {
      return jsonResponse(503, { error: { code: 'host_unavailable', message: `${problem}; and this browser could not keep the write: ${err.message}` } },
        { 'Idempotency-Key': key });
    }
    await replayer.registerSync();
    if (!syncSupported) replayer.replay().catch(() => { /* the timer retries */ });
    await tellPages({ type: 'queued-in-browser', key, reason: problem, source: SOURCE });
    return jsonResponse(202, { queued: 'browser', key }, { 'Idempotency-Key': key });
  }

  async function reason(resp) {
    try {
      const text = await resp.text();
      try {
        const b = JSON.parse(text);
        const m = (b && b.error && (b.error.message || b.error)) || (b && b.message);
        if (typeof m === 'string' && m) return m;
      } catch { /* not JSON */ }
      if (text) return text.split('\n')[0].slice(0, 200);
    } catch { /* no body */ }
    return `refused with ${resp.status}`;
  }

  // drain replays the queued writes, oldest first, one at a time (the
  // host's outbox keeps their order from there).
  async function drain() {
    let sent = 0;
    let failed = 0;
    for (;;) {
      const [e] = await store.queued(1);
      if (!e) break;
      const headers = new Headers(e.headers);
      headers.set('Idempotency-Key', e.key);
      headers.set('Prefer', 'respond-async');
      let resp;
      try {
        resp = await fetch(e.url, {
          method: e.method,
          headers,
          body: e.body && e.body.byteLength ? e.body : undefined,
          credentials: 'same-origin',
          cache: 'no-store',
          signal: AbortSignal.timeout(MIN_TIMEOUT_MS),
        });
      } catch (err) {
        throw new TransientError(`the host is unreachable (${err.message})`);
      }
      const kind = hostHolds(resp) ? 'delivered' : policy.classify(resp.status, 'single');
      if (kind === 'delivered') {
        let action = null;
        try {
          const b = await resp.clone().json();
          action = (b && b.action) || null;
        } catch { /* the upstream's own answer */ }
        await store.settle([e.id], []);
        sent++;
        await tellPages({ type: 'replayed-from-browser', key: e.key, status: resp.status, action, source: SOURCE });
      } else if (kind === 'transient') {
        throw new TransientError(`the host answered ${resp.status}`);
      } else if (kind === 'unauthorized') {
        await tellPages({ type: 'unauthorized', source: SOURCE });
        throw new TransientError('Not signed in: open synctray with `synctray open`');
      } else {
        // Refused for good (400, 404, 409 cancelled, 413, 422 key_conflict,
        // a redirect, ...): this entry fails; the next ones go on.
        const error = await reason(resp);
        await store.settle([], [{ id: e.id, error }]);
        failed++;
        await tellPages({ type: 'failed-in-browser', key: e.key, status: resp.status, error, source: SOURCE });
      }
    }
    return { sent, failed };
  }

  const replayer = self.synctraySwCore.createReplayer({
    name: 'synctray sw-sync',
    drain,
    lockName: 'synctray-sw-sync-replay',
    syncTag: SYNC_TAG,
    messageType: 'synctray-replay',
    syncSupported,
    counts: () => store.counts(),
    retryMs: RETRY_MS,
  });
  replayer.listen();

  // For tests and debugging.
  self.synctraySwSync = { syncSupported, syncTag: SYNC_TAG, replay: replayer.replay, store };
})();
