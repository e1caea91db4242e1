// uuid7.js: UUIDv7 keys (RFC 9562): a 48-bit Unix time in milliseconds, then
// random bits. Keys made later sort later, so the host's key index grows at
// its end. Within one millisecond a 12-bit counter (seeded at random) keeps
// the keys of this page (or worker) strictly increasing.
//
// A classic script, so that service workers can importScripts it; pages and
// module workers import it for its side effect (or import /uuid.js, the
// bundled app's ES-module face of it). It defines
// self.synctrayUUID = {uuidv7(now?), uuidTime(key)}; one copy per global, so
// every user in a page shares the counter.
'use strict';

(() => {
  if (self.synctrayUUID) return;

  let lastMs = 0;
  let counter = 0;

  function uuidv7(now = Date.now()) {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    if (now > lastMs) {
      lastMs = now;
      counter = ((b[6] & 0x07) << 8) | b[7]; // 11 random bits: room to count up
    } else if (++counter > 0xfff) {
      lastMs++; // borrow the next millisecond rather than repeat or wrap
      counter = 0;
    }
    let ms = lastMs;
    for (let i = 5; i >= 0; i--) {
      b[i] = ms % 256;
      ms = Math.floor(ms / 256);
    }
    b[6] = 0x70 | (counter >> 8); // version 7
    b[7] = counter & 0xff;
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // uuidTime returns the time (ms since the epoch) inside a UUIDv7, or NaN
  // for any other key.
  function uuidTime(key) {
    if (typeof key !== 'string' || key.length !== 36 || key[14] !== '7') return NaN;
    return parseInt(key.slice(0, 8) + key.slice(9, 13), 16);
  }

  self.synctrayUUID = { uuidv7, uuidTime };
})();
