// push.js: Web Push, where the browser reaches a push service. Here (and
// behind many firewalls) PushManager.subscribe never settles, so every
// step has a deadline; without push the page relies on /ws while it is
// open, and the tray shows desktop notifications.
import { api } from './api.js';

class Timeout extends Error {}

function deadline(promise, ms) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Timeout('timed out')), ms); }),
  ]).finally(() => clearTimeout(timer));
}

function base64urlBytes(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function sameBytes(a, b) {
  if (!a || !b) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

// Push drives the subscription; onState(state, text) reports where it is:
// "unsupported", "unavailable", "ask", "denied", "subscribing", "on", "off".
export class Push {
  constructor(registration, { timeoutMs, onState }) {
    this.reg = registration;
    this.timeoutMs = timeoutMs;
    this.onState = onState;
    this.key = null;
  }

  async start() {
    if (!this.reg || !('PushManager' in window) || !('Notification' in window)) {
      this.onState('unsupported', 'Push unavailable in this browser: live updates while open, desktop notifications from the tray.');
      return;
    }
    try {
      const res = await api('/api/push/key');
      if (!res.ok || !res.data || !res.data.key) throw new Error('no key');
      this.key = base64urlBytes(res.data.key);
    } catch {
      this.unavailable();
      return;
    }
    if (Notification.permission === 'granted') await this.subscribe();
    else if (Notification.permission === 'denied') this.onState('denied', 'Notifications are blocked for this site: live updates while open, desktop notifications from the tray.');
    else this.onState('ask', 'Get a notification when a message arrives while synctray is closed.');
  }

  // enable asks for permission (from a click) and subscribes.
  async enable() {
    const perm = await Notification.requestPermission();
    if (perm !== 'granted') {
      this.onState('denied', 'Notifications were not allowed: live updates while open, desktop notifications from the tray.');
      return;
    }
    await this.subscribe();
  }

  async subscribe() {
    this.onState('subscribing', 'Turning on notifications…');
    try {
      let sub = await deadline(this.reg.pushManager.getSubscription(), this.timeoutMs);
      if (sub && !sameBytes(sub.options.applicationServerKey, this.key)) {
        await deadline(sub.unsubscribe(), this.timeoutMs); // the host has new keys
        sub = null;
      }
      if (!sub) {
        sub = await deadline(this.reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: this.key }), this.timeoutMs);
      }
      const res = await api('/api/push/subscriptions', { method: 'POST', body: sub.toJSON() });
      if (!res.ok) throw new Error(`host answered ${res.status}`);
      this.sub = sub;
      this.onState('on', 'Notifications on: you hear about new messages while synctray is closed.');
    } catch {
      this.unavailable();
    }
  }

  async disable() {
    const sub = this.sub;
    this.sub = null;
    if (sub) {
      await api('/api/push/subscriptions', { method: 'DELETE', body: { endpoint: sub.endpoint } }).catch(() => {});
      await deadline(sub.unsubscribe(), this.timeoutMs).catch(() => {});
    }
    this.onState('off', 'Notifications off.');
  }

  unavailable() {
    this.onState('unavailable', 'Push unavailable: live updates while open, desktop notifications from the tray.');
  }
}
