// live.js: the host's live events over the WebSocket /ws. It reconnects
// with capped, jittered backoff and asks for what it missed with ?since=.

export class Live {
  constructor({ onEvent, onOpen, onClose }) {
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.seq = 0;
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
  }

  get connected() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.timer);
    const url = new URL('/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this.seq > 0) url.searchParams.set('since', String(this.seq));
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onOpen();
    };
    ws.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return;
      }
      if (typeof ev.seq === 'number') this.seq = ev.seq;
      this.onEvent(ev);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClose();
      this.retryLater();
    };
  }

  retryLater() {
    const cap = Math.min(5000, 250 * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.connect(), cap / 2 + Math.random() * cap / 2);
  }

  // reconnect drops the current socket, which may be stale (a host that
  // went away without closing it), and connects again at once.
  reconnect() {
    const ws = this.ws;
    if (ws) {
      this.ws = null;
      ws.onclose = null;
      ws.close();
      this.onClose();
    }
    this.attempt = 0;
    this.connect();
  }
}
