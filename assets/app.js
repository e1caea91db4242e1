// app.js: synctray's page. It keeps one model of the messages, fed by the
// host (actions, status, messages), the browser's outbox (IndexedDB, kept
// by the service worker), the live socket and the worker's messages, and
// draws it with view.js.
//
// Test hooks in the page URL: ?nosync=1 (the worker acts as where
// SyncManager is missing), ?poll=MS (polling interval), ?pushtimeout=MS.
import { api, errorText, onUnauthorized } from './api.js';
import { Live } from './live.js';
import { Push } from './push.js';
import { uuidTime, uuidv7 } from './uuid.js';
import * as view from './view.js';

const params = new URLSearchParams(location.search);
const NOSYNC = params.has('nosync');
const POLL_MS = Number(params.get('poll')) || 30000;
const PUSH_TIMEOUT_MS = Number(params.get('pushtimeout')) || 5000;
const FALLBACK_REPLAY_MS = 15000;
const DATA_CACHE = 'synctray-data';
const outbox = self.synctrayOutbox;
const $ = (id) => document.getElementById(id);

// ---- model -------------------------------------------------------------------

// items: key → {key, mine, text, created, host, browser, upstream, local}
//   host: the host's action; browser: the outbox entry; upstream: the
//   upstream applied it; local: this page's own note ({state, reason}).
const items = new Map();
const model = {
  status: null, // the host's last status
  hostReachable: null, // null: not known yet
  browserQueued: 0,
  unauthorized: false,
};

function item(key) {
  let it = items.get(key);
  if (!it) {
    it = { key, mine: false, text: '', created: uuidTime(key), host: null, browser: null, upstream: false, local: null };
    items.set(key, it);
  }
  return it;
}

function textOf(type, payload) {
  if (payload && typeof payload.text === 'string') return payload.text;
  const s = JSON.stringify(payload);
  return type === 'message' ? s : `[${type}] ${s}`;
}

function ms(t) {
  return t ? Date.parse(String(t).replace(/(\.\d{3})\d+/, '$1')) : NaN;
}

const HOST_ORDER = { queued: 0, syncing: 1, failed: 2, cancelled: 2, synced: 3 };

// setHost records the host's view of an action unless we hold a newer one.
function setHost(action) {
  if (!action || !action.key) return;
  const it = item(action.key);
  const old = it.host;
  if (old) {
    const dt = ms(action.updated_at) - ms(old.updated_at);
    if (dt < 0 || (dt === 0 && HOST_ORDER[action.state] < HOST_ORDER[old.state])) return;
  }
  it.mine = true;
  it.host = action;
  it.browser = null; // the host holds it now
  it.local = null;
  it.text = textOf(action.type, action.payload);
  if (!Number.isFinite(it.created)) it.created = ms(action.created_at);
  changed();
}

function setMessage(m) {
  if (!m || !m.key) return;
  const known = items.has(m.key);
  const it = item(m.key);
  it.upstream = true;
  if (!known) {
    it.text = textOf(m.type, m.payload);
    it.created = ms(m.applied_at);
  }
  changed();
}

function setOutbox(entries) {
  const seen = new Set();
  for (const e of entries) {
    const it = item(e.key);
    seen.add(e.key);
    it.mine = true;
    it.browser = e;
    it.local = null;
    if (!it.text) it.text = textOf(e.type, e.payload);
    if (!Number.isFinite(it.created)) it.created = e.created;
  }
  for (const it of items.values()) if (it.browser && !seen.has(it.key)) it.browser = null;
  model.browserQueued = entries.filter((e) => e.state === 'queued').length;
  changed();
}

function setStatus(st) {
  if (!st) return;
  model.status = st;
  changed();
}

function displayState(it) {
  if (it.upstream) return { state: it.mine ? 'sent' : 'other' };
  if (it.host) {
    switch (it.host.state) {
      case 'synced': return { state: 'sent' };
      case 'queued': return { state: 'host', reason: it.host.last_error ? `Retrying: ${it.host.last_error}` : '', actions: [{ label: 'Cancel', run: () => cancelOnHost(it.host) }] };
      case 'syncing': return { state: 'host', reason: it.host.last_error ? `Retrying: ${it.host.last_error}` : '' };
      case 'failed': return { state: 'failed', reason: it.host.last_error, actions: [{ label: 'Retry', run: () => retryOnHost(it.host) }] };
      case 'cancelled': return { state: 'cancelled' };
    }
  }
  if (it.browser) {
    if (it.browser.state === 'failed') {
      return { state: 'failed', reason: it.browser.error, actions: [{ label: 'Dismiss', run: () => dismiss(it.key) }] };
    }
    return { state: 'browser', reason: model.unauthorized ? 'Waits in this browser until you sign in' : '' };
  }
  if (it.local) return it.local;
  return { state: it.mine ? 'sending' : 'other' };
}

// ---- drawing -------------------------------------------------------------------

let drawPending = false;

function changed() {
  if (drawPending) return;
  drawPending = true;
  setTimeout(draw, 0);
}

function draw() {
  drawPending = false;
  const list = [];
  for (const it of items.values()) {
    list.push({ key: it.key, id: it.host ? it.host.id : 0, text: it.text, time: it.created, ...displayState(it) });
  }
  view.renderList(list);
  const c = model.status && model.status.counts;
  view.renderCounts(model.browserQueued, c ? c.queued + c.syncing : 0);
  view.renderConn(connState(), connProblem());
  view.renderMode(model.status, model.hostReachable === true && !model.unauthorized && !!model.status);
}

function connState() {
  if (!navigator.onLine) return 'offline';
  if (model.hostReachable === null) return 'connecting';
  if (!model.hostReachable) return 'host-down';
  if (model.unauthorized) return 'signed-out';
  // The host's one status value (design §11): state and problem.
  const st = model.status;
  if (st && st.state === 'blocked') return 'blocked';
  if (st && (st.state === 'working_offline' || st.work_offline)) return 'work-offline';
  if (st && (st.state === 'offline' || !st.online)) return 'upstream-down';
  return 'online';
}

// connProblem is the host's one-line reason when it is not online.
function connProblem() {
  const st = model.status;
  return (model.hostReachable && !model.unauthorized && st && st.problem && st.problem.message) || '';
}

// ---- talking to the host -------------------------------------------------------

function reachable(ok) {
  if (model.hostReachable === ok) return;
  const was = model.hostReachable;
  model.hostReachable = ok;
  changed();
  if (!ok && live.connected) live.reconnect(); // the socket may be stale
  if (ok && was === false) askWorker({ type: 'replay' });
}

// call is api() that notes whether the host answered.
async function call(path, opts) {
  try {
    const res = await api(path, opts);
    reachable(true);
    if (res.ok) signedIn();
    return res;
  } catch (err) {
    reachable(false);
    throw err;
  }
}

async function loadActions() {
  const res = await call('/api/actions?limit=200');
  if (res.ok) for (const a of res.data.actions) setHost(a);
}

async function loadStatus() {
  const res = await call('/api/status');
  if (res.ok) setStatus(res.data);
}

async function loadMessages() {
  const res = await call('/api/messages?limit=100');
  if (res.ok && res.data) for (const m of res.data.messages || []) setMessage(m);
}

async function loadOutbox() {
  try {
    setOutbox(await outbox.all());
  } catch (err) {
    console.warn('synctray: cannot read the browser outbox', err);
  }
}

// loadAll reloads everything; when the host is unreachable, the data the
// worker cached (from the answers it passed through, and Periodic Sync)
// stands in.
async function loadAll() {
  await loadOutbox();
  const results = await Promise.allSettled([loadActions(), loadStatus()]);
  const msgs = await Promise.allSettled([loadMessages()]);
  if ([...results, ...msgs].some((r) => r.status === 'rejected')) {
    await showCachedData();
  } else {
    view.dataNote('');
  }
}

// showCachedData merges what the worker saved (the last answers it passed
// through, or a periodic sync) and says how old it is.
async function showCachedData() {
  if (!('caches' in self)) return;
  try {
    if (!(await caches.has(DATA_CACHE))) return; // open() would create it
    const cache = await caches.open(DATA_CACHE);
    const [msgs, status, actions] = await Promise.all(
      ['/api/messages?limit=100', '/api/status', '/api/actions?limit=200'].map((p) => cache.match(p)));
    if (actions && model.hostReachable === false) {
      const body = await actions.json();
      for (const a of body.actions || []) setHost(a);
    }
    if (msgs) {
      const body = await msgs.json();
      for (const m of body.messages || []) setMessage(m);
      const at = Date.parse(msgs.headers.get('X-Synctray-Fetched') || msgs.headers.get('Date'));
      const when = Number.isFinite(at) ? view.clock(at) : 'earlier';
      view.dataNote(model.hostReachable === false || !navigator.onLine ?
        `Offline — showing messages from ${when}` : `Refreshed in the background at ${when}`);
    }
    if (status && !model.status) setStatus(await status.json());
  } catch (err) {
    console.warn('synctray: cannot read cached data', err);
  }
}

async function send(text) {
  const key = uuidv7();
  const it = item(key);
  it.mine = true;
  it.text = text;
  it.created = uuidTime(key);
  it.local = { state: 'sending' };
  changed();
  const action = { type: 'message', payload: { text } };
  let res;
  try {
    res = await call('/api/actions', { method: 'POST', headers: { 'Idempotency-Key': key }, body: action });
  } catch {
    // No worker between the page and the host (first visit, or a browser
    // without one): keep the message in the browser's queue ourselves.
    await queueHere(key, action);
    return;
  }
  if (res.status === 202 && res.data && res.data.queued === 'browser') {
    reachable(false);
    await loadOutbox();
    view.announce('Queued in this browser: it goes out when the host is back.');
  } else if (res.ok) {
    setHost(res.data);
    view.announce('Sent to the host.');
  } else if (res.status === 401) {
    // Not signed in: the message waits in this browser, and goes out once
    // a login link has signed this browser in.
    await queueHere(key, action, 'Kept in this browser: it goes out once you sign in.');
  } else {
    const reason = errorText(res);
    it.local = { state: 'failed', reason };
    changed();
    view.announce(`Not sent: ${reason}`);
  }
}

async function queueHere(key, action, said = 'Queued in this browser: it goes out when the host is back.') {
  try {
    await outbox.add({ key, ...action });
    await loadOutbox();
    if (registration && registration.sync && !NOSYNC) await registration.sync.register('outbox').catch(() => {});
    view.announce(said);
  } catch (err) {
    item(key).local = { state: 'failed', reason: `Could not keep it in this browser: ${err.message}` };
    changed();
  }
}

async function retryOnHost(action) {
  view.result('Retrying…', 'busy');
  try {
    const res = await call(`/api/actions/${action.id}/retry`, { method: 'POST' });
    if (res.ok) {
      setHost(res.data);
      view.result(model.status && model.status.work_offline ?
        'Queued again: it goes out when you stop working offline' : 'Queued again: the host sends it now', 'ok');
    } else {
      view.result(`Cannot retry: ${errorText(res)}`, 'bad');
    }
  } catch {
    view.result('Cannot retry: host not reachable', 'bad');
  }
}

async function cancelOnHost(action) {
  try {
    const res = await call(`/api/actions/${action.id}/cancel`, { method: 'POST' });
    if (res.ok) {
      setHost(res.data);
      view.result('Cancelled: it will not be sent', 'ok');
    } else {
      // 409: the host's reason (it was sent meanwhile, say).
      view.result(`Cannot cancel: ${errorText(res)}`, 'bad');
      loadActions().catch(() => {});
    }
  } catch {
    view.result('Cannot cancel: host not reachable', 'bad');
  }
}

async function setWorkOffline(on) {
  try {
    const res = await call('/api/mode', { method: 'PUT', body: { work_offline: on } });
    if (res.ok) {
      setStatus(res.data);
      view.result(on ? 'Working offline: messages wait on the host' : 'Syncing again', 'ok');
    } else {
      view.result(`Cannot change the mode: ${errorText(res)}`, 'bad');
    }
  } catch {
    view.result('Cannot change the mode: host not reachable', 'bad');
  }
  changed(); // the switch shows the host's mode, whatever happened
}

async function dismiss(key) {
  await outbox.dismiss(key);
  items.delete(key);
  await loadOutbox();
}

async function syncNow() {
  const btn = $('sync-now');
  btn.disabled = true;
  view.result('Syncing…', 'busy');
  try {
    await askWorker({ type: 'replay' });
    let res;
    try {
      res = await call('/api/sync', { method: 'POST' });
    } catch {
      view.result(model.browserQueued > 0 ? 'Host not reachable: messages stay queued in this browser' : 'Host not reachable', 'bad');
      return;
    }
    if (res.ok) view.result(reportText(res.data), 'ok');
    else view.result(syncFailure(res), 'bad');
    await loadAll();
  } finally {
    btn.disabled = false;
  }
}

// reportText sums up a sync report: "3 sent", "2 sent, 1 refused".
function reportText(rep) {
  const parts = [];
  if (rep && rep.synced) parts.push(`${rep.synced} sent`);
  if (rep && rep.rejected) parts.push(`${rep.rejected} refused by the upstream`);
  return parts.length ? parts.join(', ') : 'Nothing to send';
}

// syncFailure is the one line for a Sync now the host could not finish,
// in the host's words: "Upstream not reachable — will retry at 14:05",
// "Sync blocked: <the problem>".
function syncFailure(res) {
  if (res.status === 401) return 'Not signed in';
  const d = res.data || {};
  const st = d.status || model.status;
  if (d.status) setStatus({ ...model.status, ...d.status });
  const problem = st && st.problem && st.problem.message;
  if (st && st.state === 'blocked' && problem) return `Sync blocked: ${problem}`;
  const why = (d.report && d.report.error) || (d.error && d.error.message) || problem || `the host answered ${res.status}`;
  const sent = d.report && d.report.synced ? `${d.report.synced} sent, then: ` : '';
  const next = st && ms(st.next_attempt);
  return `${sent}${why}${Number.isFinite(next) ? ` — will retry at ${view.clock(next)}` : ''}`;
}

// ---- the service worker --------------------------------------------------------

let registration = null;

// askWorker sends msg to the controlling worker and resolves with its
// answer (or null without a worker).
function askWorker(msg, timeoutMs = 30000) {
  const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (!sw) return Promise.resolve(null);
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    const timer = setTimeout(() => resolve(null), timeoutMs);
    ch.port1.onmessage = (e) => { clearTimeout(timer); resolve(e.data); };
    sw.postMessage(msg, [ch.port2]);
  });
}

function onWorkerMessage(msg) {
  switch (msg && msg.type) {
    case 'queued-in-browser':
      reachable(false);
      loadOutbox();
      break;
    case 'outbox-changed':
      loadOutbox();
      break;
    case 'replayed':
      for (const r of msg.results) if (r.action) setHost(r.action);
      loadOutbox();
      if (msg.results.some((r) => r.status >= 400)) view.announce('The host refused a message: see the list.');
      break;
    case 'sync-gave-up':
      view.notice(`Automatic retries stopped: ${msg.queued === 1 ? '1 message waits' : `${msg.queued} messages wait`} in this browser. Press Sync now when the host is back.`);
      break;
    case 'unauthorized':
      signedOut();
      break;
    case 'data-refreshed':
      showCachedData();
      break;
    case 'push':
      if (msg.data && msg.data.event) handleEvent(msg.data.event);
      if (msg.data && msg.data.title) view.announce(`${msg.data.title}${msg.data.body ? `: ${msg.data.body}` : ''}`);
      break;
  }
}

async function registerWorker() {
  if (!('serviceWorker' in navigator)) return null;
  navigator.serviceWorker.addEventListener('message', (e) => onWorkerMessage(e.data));
  navigator.serviceWorker.startMessages();
  try {
    const url = NOSYNC ? '/sw.js?nosync=1' : '/sw.js';
    await navigator.serviceWorker.register(url, { scope: '/', updateViaCache: 'none' });
    // A worker that cannot install (say, the host went away mid-install)
    // must not hold the page up.
    return await Promise.race([
      navigator.serviceWorker.ready,
      new Promise((resolve) => setTimeout(() => resolve(null), 10000)),
    ]);
  } catch (err) {
    console.warn('synctray: no service worker', err);
    return null;
  }
}

// ---- live updates and refresh ----------------------------------------------------

function handleEvent(ev) {
  switch (ev && ev.kind) {
    case 'action':
      setHost(ev.action);
      break;
    case 'status':
      setStatus(ev.status);
      break;
    case 'message':
      setMessage(ev.message);
      break;
    case 'report':
      if (ev.report && ev.report.after_offline) view.announce(`Back online: ${ev.report.synced} sent upstream.`);
      break;
    case 'resync':
      loadAll();
      break;
  }
}

const live = new Live({
  onEvent: handleEvent,
  onOpen: () => {
    reachable(true);
    askWorker({ type: 'replay' });
    loadAll();
  },
  // A closed socket means the host went away (or restarts): say so at once
  // rather than at the next API call; Live reconnects with backoff.
  // Without a session the host refuses the socket: that says nothing
  // about whether it is up, so ask it.
  onClose: () => {
    if (model.unauthorized) loadStatus().catch(() => {});
    else reachable(false);
  },
});

let pollTimer = 0;

async function poll() {
  await Promise.allSettled([loadMessages(), loadStatus()]);
}

function startPolling() {
  document.body.dataset.refresh = 'poll';
  const tick = () => {
    clearTimeout(pollTimer);
    if (document.visibilityState !== 'visible') return;
    pollTimer = setTimeout(async () => {
      await poll();
      tick();
    }, POLL_MS);
  };
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      poll();
      tick();
    } else {
      clearTimeout(pollTimer);
    }
  });
  tick();
}

// refreshInBackground registers Periodic Background Sync where the browser
// allows it; otherwise the page polls while it is visible.
async function refreshInBackground(reg) {
  try {
    const perm = await navigator.permissions.query({ name: 'periodic-background-sync' });
    if (perm.state === 'granted' && reg && reg.periodicSync) {
      await reg.periodicSync.register('refresh', { minInterval: 15 * 60 * 1000 });
      document.body.dataset.refresh = 'periodic';
      return;
    }
  } catch {
    // unsupported: poll
  }
  startPolling();
}

const SIGN_IN = 'Not signed in. Run `synctray open` (or use the tray\'s Open synctray) to sign in; your messages wait in this browser until then.';

function signedOut() {
  if (model.unauthorized) return;
  model.unauthorized = true;
  view.notice(SIGN_IN);
  changed();
}

// signedIn: the host took a call, so this browser has a session (again).
function signedIn() {
  if (!model.unauthorized) return;
  model.unauthorized = false;
  view.notice('');
  changed();
}

// ---- start ---------------------------------------------------------------------

function wire() {
  $('compose').addEventListener('submit', (e) => {
    e.preventDefault();
    const box = $('text');
    const text = box.value.trim();
    if (!text) return;
    box.value = '';
    box.focus();
    send(text);
  });
  $('text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('compose').requestSubmit();
  });
  $('sync-now').addEventListener('click', syncNow);
  $('work-offline').addEventListener('change', (e) => setWorkOffline(e.target.checked));
  if (/Mac|iPhone|iPad/.test(navigator.platform)) $('send-mod').textContent = '⌘';
  window.addEventListener('online', () => {
    changed();
    askWorker({ type: 'replay' });
    live.reconnect();
  });
  window.addEventListener('offline', () => changed());
  onUnauthorized(signedOut);
}

async function start() {
  wire();
  view.renderPush('checking', 'Checking notifications…');
  const loaded = loadAll();
  registration = await registerWorker();
  await loaded;
  live.connect();
  await refreshInBackground(registration);
  if (!registration || !registration.sync || NOSYNC) {
    // Without Background Sync the page keeps nudging while it is open.
    setInterval(() => { if (model.browserQueued > 0) askWorker({ type: 'replay' }); }, FALLBACK_REPLAY_MS);
  }
  const push = new Push(registration, { timeoutMs: PUSH_TIMEOUT_MS, onState: view.renderPush });
  $('enable-push').addEventListener('click', () => push.enable());
  $('disable-push').addEventListener('click', () => push.disable());
  document.documentElement.dataset.ready = 'true';
  await push.start();
}

start();
