// sync.js: synctray for a page (an ES module; no build step).
//
//   import * as sync from '/synctray/sync.js';
//
//   const resp = await sync.fetch('/upstream/todos', {
//     method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(todo),
//   });
//   resp.idempotencyKey                     // the write's key (also resp.headers.get('Idempotency-Key'))
//   // resp is the upstream's own answer when it came in time (Synctray-State:
//   // synced | failed), else 202 {"queued": "host", "action": {...}}, or, with
//   // /synctray/sw-sync.js in your worker and the host down,
//   // 202 {"queued": "browser", "key": "..."}.
//
//   const unsubscribe = sync.subscribe((ev) => { ... });
//   await sync.status();                    // the host's GET /api/status
//   sync.replay();                          // ask sw-sync.js to replay now
//
// fetch(input, init): the window's fetch, with an Idempotency-Key (UUIDv7)
//   added to a write (POST, PUT, PATCH, DELETE) that has none, so the host,
//   the browser's queue and the upstream all recognise it when it is sent
//   again. The key is on the Response as .idempotencyKey (and on a rejected
//   fetch's error); reads go out untouched.
// status(): a Promise of the host's status {state, problem?, online, counts,
//   ...} (design §11); rejects with an Error (.status set) on a non-2xx.
// subscribe(callback): live changes over the host's WebSocket /ws (one
//   connection shared by every subscriber, reconnecting with capped,
//   jittered backoff). callback gets:
//     {type: 'status', status}              on connecting and on each change
//     {type: 'action', action, key, state, answer}
//                                           an http action (this app's
//                                           /upstream/ writes) changed: state
//                                           queued | syncing | synced | failed
//                                           | cancelled; answer is the
//                                           upstream's {status, headers, body}
//                                           when there is one, else null
//     {type: 'queued-in-browser', key, reason}
//     {type: 'replayed-from-browser', key, status, action}
//     {type: 'failed-in-browser', key, status, error}
//                                           from sw-sync.js: a write kept in
//                                           this browser, handed to the host,
//                                           or refused by it for good
//   It returns a function that unsubscribes (the socket closes with the last).
// replay(): asks the service worker (sw-sync.js) to replay what it keeps;
//   done by itself on 'online', whenever the socket (re)connects, and every
//   30 s where SyncManager is missing.
import { Live } from './live.js';
import './uuid7.js';

const { uuidv7 } = self.synctrayUUID;
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const FALLBACK_REPLAY_MS = 30000;

export async function fetch(input, init = {}) {
  const base = input instanceof Request ? input : null;
  const method = String(init.method || (base && base.method) || 'GET').toUpperCase();
  if (!WRITES.has(method)) return self.fetch(input, init);
  const headers = new Headers(init.headers !== undefined ? init.headers : base ? base.headers : undefined);
  if (!headers.has('Idempotency-Key')) headers.set('Idempotency-Key', uuidv7());
  const key = headers.get('Idempotency-Key');
  let resp;
  try {
    resp = await self.fetch(input, { ...init, headers });
  } catch (err) {
    try { err.idempotencyKey = key; } catch { /* a frozen error */ }
    throw err;
  }
  Object.defineProperty(resp, 'idempotencyKey', { value: resp.headers.get('Idempotency-Key') || key });
  return resp;
}

export async function status() {
  const resp = await self.fetch('/api/status', { credentials: 'same-origin', cache: 'no-store' });
  if (!resp.ok) {
    const err = new Error(`GET /api/status: the host answered ${resp.status}`);
    err.status = resp.status;
    throw err;
  }
  return resp.json();
}

export function replay() {
  const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (sw) sw.postMessage({ type: 'synctray-replay' });
}

// ---- subscribers ----------------------------------------------------------

const subscribers = new Set();
let live = null;

function emit(ev) {
  for (const cb of [...subscribers]) {
    try {
      cb(ev);
    } catch (err) {
      console.error('synctray: a subscriber threw', err);
    }
  }
}

function onEvent(ev) {
  if (ev.kind === 'status' && ev.status) {
    emit({ type: 'status', status: ev.status });
  } else if (ev.kind === 'action' && ev.action && ev.action.type === 'http') {
    const a = ev.action;
    emit({ type: 'action', action: a, key: a.key, state: a.state, answer: a.response || null });
  } else if (ev.kind === 'resync') {
    // Missed events (the host restarted, or this page fell behind): the
    // status and the latest writes are current again.
    refreshStatus();
    catchUp();
  }
}

// catchUp sends the latest http actions as 'action' events, so that a
// subscriber that missed their changes shows their states again.
async function catchUp() {
  try {
    const resp = await self.fetch('/api/actions?limit=200', { credentials: 'same-origin', cache: 'no-store' });
    if (!resp.ok) return;
    const page = await resp.json();
    for (const a of (page.actions || []).reverse()) {
      if (a.type === 'http') emit({ type: 'action', action: a, key: a.key, state: a.state, answer: a.response || null });
    }
  } catch { /* the socket retries */ }
}

function refreshStatus() {
  status().then((s) => emit({ type: 'status', status: s }), () => { /* the socket retries */ });
}

function onWorkerMessage(e) {
  const m = e.data || {};
  if (m.source !== 'sw-sync' || !subscribers.size) return;
  switch (m.type) {
    case 'queued-in-browser':
      emit({ type: 'queued-in-browser', key: m.key, reason: m.reason });
      break;
    case 'replayed-from-browser':
      emit({ type: 'replayed-from-browser', key: m.key, status: m.status, action: m.action || null });
      // The host may have sent it on (and said so over /ws) before this
      // page's socket was back: its state now, after the worker's answer.
      catchUp();
      break;
    case 'failed-in-browser':
      emit({ type: 'failed-in-browser', key: m.key, status: m.status, error: m.error });
      break;
    default:
  }
}

export function subscribe(callback) {
  if (typeof callback !== 'function') throw new TypeError('subscribe: callback must be a function');
  subscribers.add(callback);
  if (!live) {
    live = new Live({
      onEvent,
      onOpen: () => {
        refreshStatus();
        catchUp(); // changes made while the socket was down
        replay(); // the host is there (again): hand it what the browser keeps
      },
      onClose: () => {},
    });
    live.connect();
  }
  return () => {
    subscribers.delete(callback);
    if (subscribers.size === 0 && live) {
      const l = live;
      live = null;
      clearTimeout(l.timer);
      l.connect = () => {}; // no reconnect after the last unsubscribe
      if (l.ws) {
        const ws = l.ws;
        l.ws = null;
        ws.close();
      }
    }
  };
}

// ---- replay triggers ----------------------------------------------------------

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.addEventListener('message', onWorkerMessage);
  navigator.serviceWorker.startMessages();
  self.addEventListener('online', replay);
  if (!('SyncManager' in self)) setInterval(replay, FALLBACK_REPLAY_MS);
}
