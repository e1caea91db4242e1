// Todo: a synctray example app (an ES module, no build step).
//
// It talks to an ordinary REST API of the json-server kind through the
// synctray host: GET /upstream/todos to read, POST /upstream/todos,
// PUT / PATCH / DELETE /upstream/todos/:id to write. It uses only the two
// public modules: /synctray/sync.js here (writes, live state) and
// /synctray/sw-sync.js in its own sw.js (writes kept in the browser while
// the host is down).
//
// The page is optimistic: a write is shown at once, as "queued", and is
// kept in localStorage (PENDING) until the host says it synced or failed,
// so a reload while writes wait still shows them. Writes go out one at a
// time, in the order they were made (the host replays in the order it
// stored them, so the page must not let two race each other there).
import * as sync from '/synctray/sync.js';

const API = '/upstream/todos';
const PENDING = 'synctray-todo.pending';
const POLL_MS = 5000; // how often the host's status is asked for

const $ = (id) => document.getElementById(id);

// todos: the list as the backend (or the host's cached copy of it) last
// gave it, plus the writes that synced since.
let todos = [];
// pending: the writes not settled yet, oldest first:
//   {key, id, method, url, body, sent, where: 'host'|'browser',
//    state: 'queued'|'syncing'|'failed', reason}
// A failed one stays (shown "failed" with the backend's reason) until the
// user dismisses it.
let pending = loadPending();
// The writes made before this page loaded: they may have settled while no
// page was listening.
const fromBefore = new Set(pending.map((op) => op.key));
// settled: id -> 'synced' for items whose last write synced in this page.
const settled = new Map();
let hostStatus = null; // the host's last status, null: not reachable
let editing = null; // the id whose title is being edited

function loadPending() {
  try {
    const v = JSON.parse(localStorage.getItem(PENDING) || '[]');
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

function savePending() {
  localStorage.setItem(PENDING, JSON.stringify(pending));
}

// ---- writes -----------------------------------------------------------------

// Ids are made here, not by the backend. json-server (like many REST
// backends) makes an id on POST unless the body has one; if the page
// waited for that id, an item created while the backend (or the host) is
// down would have no URL yet, and its later PATCH / PUT / DELETE could not
// be queued behind its POST. With a client-made id (a random UUID) every
// write has its final URL at once and they all queue in order. It also
// means a POST that were ever sent twice could not make a second item:
// the backend refuses a duplicate id. (json-server answers that with a
// 500, which synctray would retry; a backend of your own should answer
// such a repeat with the first answer, per Idempotency-Key.)
function newId() {
  return crypto.randomUUID();
}

function write(method, id, body) {
  const url = method === 'POST' ? API : `${API}/${encodeURIComponent(id)}`;
  // The key is made here too (any UUID will do), so that the write is in
  // PENDING with its key before it is sent: events about it may come over
  // the socket before its answer does, and a write sent again after a
  // reload carries the same key, which the host recognises.
  const op = { key: crypto.randomUUID(), id, method, url, body, sent: false, where: 'host', state: 'queued', reason: '' };
  pending.push(op);
  savePending();
  render();
  flush();
}

let flushing = null;

// flush sends the writes not sent yet, one after the other, in order. Each
// is answered as soon as it is stored (Prefer: respond-async): by the host
// (202, in its outbox on disk) or, with the host down, by sw-sync.js (202,
// in this browser's IndexedDB). What happens next comes from subscribe.
function flush() {
  if (!flushing) flushing = drain().finally(() => { flushing = null; });
  return flushing;
}

async function drain() {
  await null; // so that flushing is set before this settles
  for (let op = nextUnsent(); op; op = nextUnsent()) {
    if (!(await send(op))) break; // not reachable: try again later
  }
}

function nextUnsent() {
  return pending.find((op) => !op.sent && op.state !== 'failed');
}

async function send(op) {
  const init = {
    method: op.method,
    headers: { 'Idempotency-Key': op.key, Prefer: 'respond-async', Accept: 'application/json' },
  };
  if (op.body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(op.body);
  }
  let resp;
  try {
    resp = await sync.fetch(op.url, init);
  } catch (err) {
    // No service worker controls the page yet and the host is down.
    console.warn(`todo: ${op.method} ${op.url} not sent, kept for later:`, err);
    setHost(null);
    return false;
  }
  const state = resp.headers.get('Synctray-State');
  let json = null;
  try { json = await resp.json(); } catch { /* not JSON */ }
  if (!pending.includes(op)) return true; // settled meanwhile (over the socket)
  op.sent = true;
  if (resp.status === 202 && json && json.queued === 'browser') {
    op.where = 'browser';
  } else if (state === 'synced') {
    synced(op);
  } else if (state === 'failed' || (!resp.ok && !state)) {
    failed(op, reasonOf(resp.status, json));
  }
  savePending();
  render();
  return true;
}

function byKey(key) {
  return pending.find((op) => op.key === key);
}

function synced(op) {
  pending = pending.filter((o) => o !== op);
  todos = apply(todos, op);
  settled.set(op.id, 'synced');
  savePending();
  if (!pending.some((o) => o.state !== 'failed')) refresh();
}

function failed(op, reason) {
  op.state = 'failed';
  op.reason = reason;
  settled.delete(op.id);
  savePending();
}

function reasonOf(status, body) {
  const text = body && (body.error && (body.error.message || body.error.code) || body.message || body.error);
  return `${status}${typeof text === 'string' && text ? ' ' + text : ''}`;
}

// ---- live state -------------------------------------------------------------

sync.subscribe((ev) => {
  switch (ev.type) {
    case 'status':
      setHost(ev.status);
      flush();
      return;
    case 'action': {
      const op = byKey(ev.key);
      if (!op) return;
      if (ev.state === 'synced') synced(op);
      else if (ev.state === 'failed') failed(op, ev.answer ? reasonOf(ev.answer.status, parseBody(ev.answer.body)) : (ev.action.error || 'failed'));
      else if (ev.state === 'cancelled') { pending = pending.filter((o) => o !== op); refresh(); }
      else if (op.state !== 'failed') { op.state = ev.state; op.where = 'host'; op.sent = true; }
      break;
    }
    case 'queued-in-browser': {
      const op = byKey(ev.key);
      if (op) { op.where = 'browser'; op.sent = true; }
      setHost(null);
      break;
    }
    case 'replayed-from-browser': {
      const op = byKey(ev.key);
      if (op) { op.where = 'host'; if (ev.action && ev.action.state === 'synced') synced(op); }
      break;
    }
    case 'failed-in-browser': {
      const op = byKey(ev.key);
      if (op) failed(op, reasonOf(ev.status, { message: ev.error }));
      break;
    }
    default:
      return;
  }
  savePending();
  render();
});

function parseBody(body) {
  if (body && typeof body === 'object') return body;
  try { return JSON.parse(body); } catch { return { message: String(body || '').slice(0, 120) }; }
}

async function pollStatus() {
  try {
    setHost(await sync.status());
  } catch {
    setHost(null);
  }
}

function setHost(status) {
  const wasDown = hostStatus === null;
  hostStatus = status;
  // Writes the host took while this page was closed settled without an
  // event here: with nothing queued on the host any more, what the host
  // holds is done, and the list read next is the truth.
  if (status && status.counts && !status.counts.queued && !status.counts.syncing) {
    const before = pending.length;
    pending = pending.filter((op) => !fromBefore.has(op.key) || op.state === 'failed' || !op.sent || op.where === 'browser');
    if (pending.length !== before) { savePending(); refresh(); }
  }
  if (status && wasDown) flush();
  renderConn();
}

// ---- reading ----------------------------------------------------------------

let source = 'none'; // where the list came from: backend | offline | none
let refreshing = null;

// refresh reads the list through the host: from the backend, or, when the
// backend is down, the host's last stored copy (Synctray-Cache: offline).
function refresh() {
  if (!refreshing) refreshing = read().finally(() => { refreshing = null; });
  return refreshing;
}

async function read() {
  try {
    const resp = await fetch(API, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!resp.ok) throw new Error(`GET ${API}: ${resp.status}`);
    const list = await resp.json();
    if (!Array.isArray(list)) throw new Error(`GET ${API}: not a list`);
    const cache = resp.headers.get('Synctray-Cache');
    const offline = cache === 'offline' || resp.headers.get('X-Todo-Cache') === 'worker';
    // An old copy replaces the list only when the page has none: the
    // list it has includes the writes that synced since.
    if (!offline || source === 'none') todos = list;
    if (offline && source !== 'none') retryLater();
    source = offline ? 'offline' : 'backend';
    setNote(offline ? `Offline: the backend is not reachable, this is the list as it was ${age(resp)}. Changes are kept and sent when it is back.` : '');
  } catch (err) {
    setNote(todos.length ? 'Could not read the list; showing what this page had.' : `Could not read the list (${err.message}).`);
  }
  render();
}

let retryTimer = 0;

function retryLater() {
  if (!retryTimer) retryTimer = setTimeout(() => { retryTimer = 0; refresh(); }, 3000);
}

function age(resp) {
  const s = Number(resp.headers.get('Age'));
  if (!Number.isFinite(s) || resp.headers.get('Age') === null) return 'last seen';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function setNote(text) {
  const note = $('data-note');
  note.dataset.source = source;
  note.textContent = text;
  note.hidden = !text;
}

// ---- the view ---------------------------------------------------------------

// apply returns list with one write applied to it.
function apply(list, op) {
  switch (op.method) {
    case 'POST':
      return list.some((t) => t.id === op.id) ? list : [...list, op.body];
    case 'PUT':
      return list.map((t) => (t.id === op.id ? { ...op.body } : t));
    case 'PATCH':
      return list.map((t) => (t.id === op.id ? { ...t, ...op.body } : t));
    case 'DELETE':
      return list.filter((t) => t.id !== op.id);
    default:
      return list;
  }
}

// view: the list with every pending write applied (a failed one too, so
// that it stays visible with its reason); a deleted item stays in its
// place, marked, until its DELETE settles.
function view() {
  let list = todos.map((t) => ({ ...t }));
  const last = new Map(); // id -> its latest pending write
  for (const op of pending) {
    last.set(op.id, op);
    list = op.method === 'DELETE'
      ? list.map((t) => (t.id === op.id ? { ...t, deleted: true } : t))
      : apply(list, op);
  }
  return list.map((t) => ({ ...t, op: last.get(t.id) || null }));
}

const LABEL = { queued: 'queued', syncing: 'sending…', synced: 'synced', failed: 'failed' };

// render updates the list in place: an item keeps its element (and so the
// focus, an open edit box and what is typed in it) while its state changes,
// which it does at every retry while the backend is down.
const shown = new Map(); // id -> {li, t}: the element and the item it shows

function render() {
  const ul = $('todos');
  const items = view();
  const ids = new Set(items.map((t) => t.id));
  for (const [id, s] of shown) {
    if (!ids.has(id)) { s.li.remove(); shown.delete(id); }
  }
  let prev = null;
  for (const t of items) {
    let s = shown.get(t.id);
    if (!s) {
      s = { li: newItem(t.id), t };
      shown.set(t.id, s);
    }
    s.t = t;
    update(s.li, t);
    const next = prev ? prev.nextElementSibling : ul.firstElementChild;
    if (next !== s.li) ul.insertBefore(s.li, next);
    prev = s.li;
  }
  $('empty').hidden = items.length > 0;
  document.documentElement.dataset.pending = String(pending.filter((o) => o.state !== 'failed').length);
}

// newItem makes the element of one item; its handlers act on the item as
// it is shown when they run.
function newItem(id) {
  const li = $('item').content.firstElementChild.cloneNode(true);
  li.dataset.id = id;
  const cur = () => shown.get(id).t;
  const box = li.querySelector('.done');
  box.id = `done-${id}`;
  box.addEventListener('change', () => write('PATCH', id, { done: box.checked }));
  const form = li.querySelector('.edit');
  const input = li.querySelector('.edit-title');
  li.querySelector('.edit-btn').addEventListener('click', () => {
    editing = id;
    input.value = String(cur().title ?? '');
    render();
    input.focus();
  });
  li.querySelector('.cancel').addEventListener('click', () => { editing = null; render(); });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = cur();
    const next = input.value.trim();
    editing = null;
    if (!next || next === t.title) { render(); return; }
    // PUT: the whole item, so sending it again changes nothing.
    write('PUT', id, { id, title: next, done: !!t.done });
  });
  li.querySelector('.delete').addEventListener('click', () => write('DELETE', id));
  li.querySelector('.dismiss').addEventListener('click', () => {
    pending = pending.filter((o) => o.id !== id || o.state !== 'failed');
    savePending();
    refresh();
  });
  return li;
}

function update(li, t) {
  const op = t.op;
  const state = op ? op.state : settled.get(t.id) || 'synced';
  const title = String(t.title ?? '');
  li.dataset.state = state;
  setData(li, 'op', op && op.method);
  setData(li, 'where', op && op.where === 'browser' ? 'browser' : '');
  li.classList.toggle('is-done', !!t.done);
  li.classList.toggle('is-deleted', !!t.deleted);

  const box = li.querySelector('.done');
  box.checked = !!t.done;
  box.disabled = !!t.deleted;
  box.setAttribute('aria-label', `Done: ${title}`);
  const titleEl = li.querySelector('.title');
  titleEl.textContent = title;

  let label = LABEL[state] || state;
  if (op && op.state !== 'failed' && op.where === 'browser') label = 'queued in this browser';
  if (op && op.state === 'failed') label = `failed: ${op.reason}`;
  if (t.deleted && op && op.state !== 'failed') label = `deleting, ${label}`;
  const stateEl = li.querySelector('.state');
  stateEl.textContent = label;
  stateEl.dataset.state = state;
  stateEl.setAttribute('aria-label', `State: ${label}`);

  const isEditing = editing === t.id && !t.deleted;
  li.querySelector('.edit').hidden = !isEditing;
  titleEl.hidden = isEditing;
  li.querySelector('.edit-title').setAttribute('aria-label', `New title for ${title}`);
  const editBtn = li.querySelector('.edit-btn');
  editBtn.setAttribute('aria-label', `Edit: ${title}`);
  editBtn.hidden = isEditing || !!t.deleted;
  const del = li.querySelector('.delete');
  del.setAttribute('aria-label', `Delete: ${title}`);
  del.hidden = !!t.deleted;
  const dismiss = li.querySelector('.dismiss');
  dismiss.setAttribute('aria-label', `Dismiss the failed change to ${title}`);
  dismiss.hidden = !(op && op.state === 'failed');
}

function setData(el, name, value) {
  if (value) el.dataset[name] = value;
  else delete el.dataset[name];
}

function renderConn() {
  const el = $('conn');
  const s = hostStatus;
  let state;
  let text;
  if (!s) {
    state = 'host-down';
    text = 'synctray is not running: changes are kept in this browser and sent when it is back.';
  } else if (s.state === 'online') {
    state = 'online';
    text = 'Online';
  } else if (s.state === 'blocked') {
    state = 'blocked';
    text = `Blocked: ${(s.problem && s.problem.message) || 'the backend refuses the host'}. Changes stay queued.`;
  } else if (s.state === 'working_offline') {
    state = 'offline';
    text = 'Working offline: changes are queued.';
  } else {
    state = 'offline';
    text = `Offline${s.problem && s.problem.message ? `: ${s.problem.message}` : ''}. Changes are queued and sent when the backend is back.`;
  }
  const queued = s && s.counts ? (s.counts.queued || 0) + (s.counts.syncing || 0) : 0;
  if (queued) text += ` (${queued} waiting on the host)`;
  el.dataset.state = state;
  el.textContent = text;
}

// ---- start ------------------------------------------------------------------

$('new').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('new-title');
  const title = input.value.trim();
  if (!title) return;
  input.value = '';
  const id = newId();
  write('POST', id, { id, title, done: false });
});

render();
renderConn();
refresh();
pollStatus();
setInterval(pollStatus, POLL_MS);
window.addEventListener('online', () => { pollStatus(); refresh(); });

(async () => {
  if ('serviceWorker' in navigator) {
    try {
      await navigator.serviceWorker.register('/sw.js', { scope: '/', updateViaCache: 'none' });
      await navigator.serviceWorker.ready;
    } catch (err) {
      console.warn('todo: no service worker', err);
    }
  }
  document.documentElement.dataset.ready = 'true';
  flush();
})();
