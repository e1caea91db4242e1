// view.js: the message list and the header, drawn from the app's model.

const LABELS = {
  sending: 'Sending…',
  browser: 'Queued in this browser',
  host: 'Queued on the host',
  sent: 'Sent',
  failed: 'Failed',
  cancelled: 'Cancelled',
  other: 'From others',
};

const CONN = {
  connecting: 'Connecting…',
  online: 'Online',
  offline: 'Offline',
  'host-down': 'Offline: host unreachable',
  'upstream-down': 'Host offline: upstream unreachable',
  'work-offline': 'Working offline',
  blocked: 'Sync blocked',
  'signed-out': 'Not signed in',
};

// With the host's one-line reason, the pill says the state shortly and
// then the reason ("Host offline: Upstream not reachable").
const CONN_SHORT = {
  'upstream-down': 'Host offline',
  'work-offline': 'Working offline',
  blocked: 'Sync blocked',
};

// MAX_SHOWN bounds the list: the newest messages are the ones that matter.
const MAX_SHOWN = 300;

const $ = (id) => document.getElementById(id);

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

function when(ms) {
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  return new Date().toDateString() === d.toDateString() ? timeFmt.format(d) : dateFmt.format(d);
}

// renderList draws the items (each {key, text, time, state, reason,
// actions}), newest first. actions are [{label, run}] buttons.
// Items created in the same millisecond are ordered by the host's id
// (its enqueue order) where both have one: keys do not sort by time
// within a millisecond.
export function renderList(items) {
  const sorted = items.sort((a, b) => (b.time - a.time) || (a.id && b.id ? b.id - a.id : 0) ||
    (a.key < b.key ? 1 : -1)).slice(0, MAX_SHOWN);
  const frag = document.createDocumentFragment();
  for (const it of sorted) {
    const li = document.createElement('li');
    li.className = 'msg';
    li.dataset.key = it.key;
    li.dataset.state = it.state;
    const text = document.createElement('p');
    text.className = 'msg-text';
    text.textContent = it.text;
    const meta = document.createElement('p');
    meta.className = 'msg-meta';
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = LABELS[it.state] || it.state;
    meta.append(badge);
    if (it.time) {
      const t = document.createElement('time');
      t.dateTime = new Date(it.time).toISOString();
      t.textContent = when(it.time);
      meta.append(t);
    }
    if (it.reason) {
      const r = document.createElement('span');
      r.className = 'reason';
      r.textContent = it.reason;
      meta.append(r);
    }
    for (const a of it.actions || []) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'link';
      b.textContent = a.label;
      b.setAttribute('aria-label', `${a.label}: ${it.text.slice(0, 40)}`);
      b.addEventListener('click', a.run);
      meta.append(b);
    }
    li.append(text, meta);
    frag.append(li);
  }
  $('messages').replaceChildren(frag);
  $('empty').hidden = sorted.length > 0;
}

// renderConn shows the connection state and, when the host says why it
// is not online, its one-line reason.
export function renderConn(state, problem) {
  const el = $('conn');
  const text = problem && state !== 'online' && state !== 'signed-out' ?
    `${CONN_SHORT[state] || CONN[state] || state}: ${problem}` : (CONN[state] || state);
  if (el.dataset.state === state && el.textContent === text) return;
  el.dataset.state = state;
  el.textContent = text;
  el.title = problem || '';
}

export function renderCounts(browser, host) {
  $('count-browser').textContent = String(browser);
  $('count-host').textContent = String(host);
}

// notice shows an alert above the page (null hides it); code spans in
// backquotes are shown as code.
export function notice(text) {
  const el = $('notice');
  if (!text) {
    el.hidden = true;
    el.replaceChildren();
    return;
  }
  el.replaceChildren(...codeText(text));
  el.hidden = false;
}

// clock is a time of day as people read it ("14:05").
export function clock(ms) {
  return Number.isFinite(ms) ? timeFmt.format(new Date(ms)) : '';
}

// codeText turns `code` spans into <code> elements.
function codeText(text) {
  return text.split('`').map((p, i) => {
    if (i % 2 === 0) return document.createTextNode(p);
    const c = document.createElement('code');
    c.textContent = p;
    return c;
  });
}

let resultTimer = 0;

// result shows the outcome of what the user just did (Sync now, Retry,
// Cancel, Work offline) on screen, next to the controls, and tells screen
// readers once. kind: 'busy', 'ok' or 'bad'. A result stays until the next
// one, or for a minute.
export function result(text, kind = 'ok') {
  const el = $('result');
  clearTimeout(resultTimer);
  el.dataset.kind = kind;
  el.replaceChildren(...codeText(text));
  el.hidden = false;
  announce(text.replaceAll('`', ''));
  if (kind !== 'busy') resultTimer = setTimeout(() => { el.hidden = true; }, 60000);
}

export function renderMode(status, usable) {
  const box = $('work-offline');
  box.checked = !!(status && (status.work_offline || status.state === 'working_offline'));
  box.disabled = !usable;
}

export function dataNote(text) {
  const el = $('data-note');
  el.textContent = text || '';
  el.hidden = !text;
}

let lastAnnounce = 0;

// announce tells screen readers (aria-live) what just happened.
export function announce(text) {
  const el = $('announce');
  // The same words twice in a row must still be read out.
  el.textContent = Date.now() - lastAnnounce < 50 ? `${el.textContent} ${text}` : text;
  lastAnnounce = Date.now();
}

export function renderPush(state, text) {
  const el = $('push-status');
  el.dataset.state = state;
  el.textContent = text;
  $('enable-push').hidden = !(state === 'ask' || state === 'off');
  $('disable-push').hidden = state !== 'on';
}
