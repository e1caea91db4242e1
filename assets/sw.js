// sw.js: synctray's service worker (a classic script, scope "/").
//
// - Precaches the app shell under a versioned cache; navigations go to the
//   network first and fall back to the cached shell when the host is down.
// - A POST /api/actions the host cannot take (network error, 5xx, 429) is
//   kept in IndexedDB and replayed, in order and with the same
//   Idempotency-Key, on Background Sync ('outbox'), when a page says the
//   host is back, or (without SyncManager) on start-up, 'online' and a timer.
// - The last good answers to the page's GET /api/messages, /api/status and
//   /api/actions (DATA_PATHS) are kept in the "synctray-data" cache as they
//   pass through, and Periodic Background Sync ('refresh') renews them, so
//   a page reloaded while the host is down still shows the history.
// - Push shows a notification and tells open pages.
//
// The queue-and-replay machinery (replay lock, triggers, TransientError,
// tellPages) is /synctray/sw-core.js, shared with /synctray/sw-sync.js.
//
// The host fills in the two placeholders below when it serves this file.
'use strict';

importScripts('/idb.js', '/sync-policy.js', '/synctray/sw-core.js');

const VERSION = '__SYNCTRAY_VERSION__';
const PRECACHE = __SYNCTRAY_PRECACHE__;
const SHELL_CACHE = `synctray-shell-${VERSION}`;
const DATA_CACHE = 'synctray-data';
const DATA_PATHS = ['/api/messages?limit=100', '/api/status', '/api/actions?limit=200'];

// Batches stay well under the host's limits (1,000 actions, 1 MiB body).
const BATCH_ITEMS = 1000;
const BATCH_BYTES = 768 * 1024;
const POST_TIMEOUT_MS = 10000;

// ?nosync=1 (a test hook) makes the worker behave as where SyncManager is
// missing (Firefox, Safari): no Background Sync, replay on other triggers.
const NOSYNC = new URL(self.location.href).searchParams.has('nosync');
const syncSupported = !NOSYNC && 'SyncManager' in self && !!self.registration.sync;

const outbox = self.synctrayOutbox;
const policy = self.synctrayPolicy;
const { TransientError, tellPages, jsonResponse } = self.synctraySwCore;

// For tests and debugging: what this worker is.
self.synctray = { version: VERSION, syncSupported };

// ---- lifecycle -------------------------------------------------------------

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await cache.addAll(PRECACHE.map((path) => new Request(path, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('synctray-shell-') && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// ---- fetch -----------------------------------------------------------------

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === '/api/actions' && req.method === 'POST') {
    event.respondWith(postAction(req));
    return;
  }
  // The page's reads of its data go to the network, and the worker keeps
  // the last good answer for when the host is down.
  if (req.method === 'GET' && DATA_PATHS.includes(url.pathname + url.search)) {
    const answer = fetch(req);
    event.respondWith(answer.then((resp) => resp.clone()));
    event.waitUntil(answer.then((resp) => keepData(url.pathname + url.search, resp)).catch(() => {}));
    return;
  }
  // The API, the live socket and the login link always go to the network.
  if (url.pathname.startsWith('/api/') || url.pathname === '/ws' || url.pathname === '/login' ||
      url.pathname === '/healthz' || req.method !== 'GET') {
    return;
  }
  if (req.mode === 'navigate') {
    event.respondWith(navigate(req));
    return;
  }
  event.respondWith(cacheFirst(req));
});

async function navigate(req) {
  try {
    return await fetch(req);
  } catch (err) {
    const shell = await caches.match('/', { cacheName: SHELL_CACHE });
    if (shell) return shell;
    throw err;
  }
}

async function cacheFirst(req) {
  const hit = await caches.match(req, { cacheName: SHELL_CACHE });
  return hit || fetch(req);
}

// postAction sends a page's POST /api/actions to the host; when the host
// cannot take it now, the action is queued in the browser and the page
// gets a 202 saying so.
async function postAction(req) {
  const key = req.headers.get('Idempotency-Key');
  const body = await req.clone().text();
  let problem;
  try {
    const resp = await fetch(req, { signal: AbortSignal.timeout(POST_TIMEOUT_MS) });
    if (!policy.isTransient(resp.status)) return resp;
    problem = `the host answered ${resp.status}`;
  } catch (err) {
    problem = `the host is unreachable (${err.name === 'TimeoutError' ? 'timed out' : err.message})`;
  }
  let action;
  try {
    action = JSON.parse(body);
  } catch {
    action = null;
  }
  if (!key || !action || typeof action.type !== 'string' || !('payload' in action)) {
    return jsonResponse(503, { error: { code: 'host_unavailable', message: problem } });
  }
  await outbox.add({ key, type: action.type, payload: action.payload });
  await registerSync();
  await tellPages({ type: 'queued-in-browser', key, reason: problem });
  return jsonResponse(202, { queued: 'browser', key });
}

// ---- replay ----------------------------------------------------------------

// The replayer (sw-core.js): replays never overlap (a promise flag in this
// worker, the Web Lock 'synctray-replay' across workers); triggers are the
// 'outbox' sync, a page's {type: 'replay'} message and, without
// SyncManager, the worker's start.
const replayer = self.synctraySwCore.createReplayer({
  name: 'synctray',
  drain,
  lockName: 'synctray-replay',
  syncTag: 'outbox',
  messageType: 'replay',
  syncSupported,
  counts: () => outbox.counts(),
});
const { replay, registerSync } = replayer;
replayer.listen();

async function drain() {
  let sent = 0;
  let failed = 0;
  for (;;) {
    const entries = fitBatch(await outbox.queued(BATCH_ITEMS));
    if (entries.length === 0) break;
    const r = await sendBatch(entries);
    sent += r.sent;
    failed += r.failed;
  }
  if (sent || failed) await tellPages({ type: 'outbox-changed' });
  return { sent, failed };
}

// fitBatch keeps the oldest entries that fit in one request body.
function fitBatch(entries) {
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    bytes += JSON.stringify(entries[i].payload).length + entries[i].type.length + 80;
    if (bytes > BATCH_BYTES && i > 0) return entries.slice(0, i);
  }
  return entries;
}

// sendBatch posts entries to /api/actions/batch and records each result,
// by the one failure policy (sync-policy.js). An entry is deleted only
// once the host said it holds it (2xx); an entry the host refuses is
// marked failed, with the host's reason, for the page to show. A batch
// refused as a whole (400/413/422) is halved until the offender is alone.
// Anything else keeps every entry and throws TransientError.
async function sendBatch(entries) {
  let resp;
  try {
    resp = await fetch('/api/actions/batch', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ actions: entries.map((e) => ({ key: e.key, type: e.type, payload: e.payload })) }),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new TransientError(`the host is unreachable (${err.message})`);
  }
  switch (policy.classify(resp.status, 'batch')) {
    case 'delivered':
      break;
    case 'unauthorized':
      await tellPages({ type: 'unauthorized' });
      throw new TransientError('Not signed in');
    case 'poison': {
      if (entries.length > 1) {
        const mid = Math.ceil(entries.length / 2);
        const a = await sendBatch(entries.slice(0, mid));
        const b = await sendBatch(entries.slice(mid));
        return { sent: a.sent + b.sent, failed: a.failed + b.failed };
      }
      const reason = await errorMessage(resp);
      await outbox.settle([], [{ id: entries[0].id, error: reason }]);
      await tellPages({ type: 'replayed', results: [{ key: entries[0].key, status: resp.status, error: reason }] });
      return { sent: 0, failed: 1 };
    }
    default: // transient, protocol: nothing here is the entries' fault
      throw new TransientError(`the host answered ${resp.status}`);
  }
  let results;
  try {
    ({ results } = await resp.json());
  } catch {
    results = null;
  }
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const remove = [];
  const failed = [];
  const report = [];
  let transient = null;
  for (const res of results || []) {
    const e = byKey.get(res.key);
    if (!e) continue;
    const kind = policy.classify(res.status, 'single');
    if (kind === 'delivered') {
      remove.push(e.id);
      report.push({ key: res.key, status: res.status, action: res.action });
    } else if (kind === 'refused' || kind === 'redirect') {
      const reason = (res.error && res.error.message) || `refused with ${res.status}`;
      failed.push({ id: e.id, error: reason });
      report.push({ key: res.key, status: res.status, error: reason });
    } else {
      transient = `the host answered ${res.status} for ${res.key}`;
    }
  }
  await outbox.settle(remove, failed);
  if (report.length) await tellPages({ type: 'replayed', results: report });
  if (transient) throw new TransientError(transient);
  if (remove.length + failed.length === 0) throw new TransientError('the host answered no results');
  return { sent: remove.length, failed: failed.length };
}

async function errorMessage(resp) {
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch { /* not JSON */ }
  return `refused with ${resp.status}`;
}

// ---- periodic refresh --------------------------------------------------------

self.addEventListener('periodicsync', (event) => {
  if (event.tag !== 'refresh') return;
  event.waitUntil(refreshData());
});

// refreshData keeps the latest messages and status for offline pages, and
// takes the chance to replay anything queued. It reads every answer in full
// before it writes any, so the cache never holds half a refresh.
async function refreshData() {
  const fresh = await Promise.all(DATA_PATHS.map(async (path) => {
    const resp = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
    if (!resp.ok) throw new Error(`GET ${path}: the host answered ${resp.status}`);
    return [path, await stamped(resp)];
  }));
  const cache = await caches.open(DATA_CACHE);
  await Promise.all(fresh.map(([path, resp]) => cache.put(path, resp)));
  await tellPages({ type: 'data-refreshed' });
  await replay().catch(() => { /* sync or the next trigger retries */ });
}

// stamped copies a response with the time it was fetched.
async function stamped(resp) {
  const headers = new Headers(resp.headers);
  headers.set('X-Synctray-Fetched', new Date().toISOString());
  return new Response(await resp.blob(), { status: resp.status, headers });
}

// keepData keeps a good answer the page got for one of DATA_PATHS.
async function keepData(path, resp) {
  if (resp.status !== 200) return; // not a 401, not an error page
  const copy = await stamped(resp);
  const cache = await caches.open(DATA_CACHE);
  await cache.put(path, copy);
}

// ---- push --------------------------------------------------------------------

self.addEventListener('push', (event) => {
  let data;
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data.text() };
  }
  event.waitUntil((async () => {
    try {
      await self.registration.showNotification(data.title || 'synctray', {
        body: data.body || '',
        tag: data.tag || undefined,
        icon: '/icons/icon-192.png',
        data: { url: data.url || '/' },
      });
    } catch (err) {
      console.warn('synctray: cannot show a notification', err); // permission withdrawn
    }
    await tellPages({ type: 'push', data });
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  let url = new URL((event.notification.data && event.notification.data.url) || '/', self.location.origin);
  if (url.origin !== self.location.origin) url = new URL('/', self.location.origin);
  event.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = wins.find((w) => new URL(w.url).origin === self.location.origin);
    if (open) return open.focus();
    return self.clients.openWindow(url.href);
  })());
});
