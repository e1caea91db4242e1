// sw-core.js: the queue-and-replay machinery of synctray's service workers,
// shared by the bundled app's /sw.js and by /synctray/sw-sync.js (which any
// app's own worker loads). A classic script that also works as an ES-module
// import for its side effect (no importScripts, no sloppy-mode code): load
// /synctray/sync-policy.js and /synctray/idb.js first. It defines
// self.synctraySwCore:
//
//   TransientError        a failure that keeps every entry queued; the
//                         replay is retried by the next trigger.
//   tellPages(msg)        posts msg to every window of the origin.
//   jsonResponse(status, body)
//   createReplayer({drain, lockName, syncTag, messageType, syncSupported,
//                   counts, retryMs, name})
//       → {replay, replayForSync, registerSync, listen}
//     drain()            sends what is queued (oldest first) and resolves
//                        with {sent, failed}, or throws TransientError.
//     replay()           runs drain; never two at once: within this worker a
//                        promise flag joins a running replay (and runs once
//                        more after it, for entries added meanwhile); across
//                        workers (an old and a new version, or two scripts
//                        sharing a store) the Web Lock lockName serialises
//                        them, so no entry is ever sent twice by two replays.
//     replayForSync()    replay, retried a little later on a transient
//                        failure (for the sync event).
//     registerSync()     asks for Background Sync with syncTag (where the
//                        browser has it).
//     listen()           installs the triggers: the 'sync' event (syncTag),
//                        a page's message {type: messageType} (answered on
//                        the message's port with {ok, sent, failed} or
//                        {ok:false, error}), a replay when the worker starts
//                        where SyncManager is missing, and, with retryMs, a
//                        timer that retries a failed replay while this
//                        worker lives (also only where SyncManager is
//                        missing: elsewhere the browser retries the sync).
'use strict';

(() => {
  // A transient failure: the entries stay queued and the replay is retried.
  class TransientError extends Error {}

  async function tellPages(msg) {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of wins) w.postMessage(msg);
  }

  function jsonResponse(status, body, headers = {}) {
    return new Response(JSON.stringify(body), {
      status,
      headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers },
    });
  }

  // A sync fired as the network comes back can meet a network that is not
  // quite usable yet, and the browser's own retry is minutes away: try again
  // a little later before giving the event up.
  const SYNC_RETRY_MS = [500, 2000];

  function createReplayer(opts) {
    const name = opts.name || 'synctray';
    let running = null;
    let again = false;
    let retryTimer = 0;
    let retryStep = 0;

    function withLock(fn) {
      if (self.navigator.locks) return self.navigator.locks.request(opts.lockName, fn);
      return fn();
    }

    function replay() {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        try {
          let total = { sent: 0, failed: 0 };
          do {
            again = false;
            const r = await withLock(opts.drain);
            total = { sent: total.sent + r.sent, failed: total.failed + r.failed };
          } while (again);
          retryStep = 0;
          return total;
        } catch (err) {
          if (opts.retryMs && !opts.syncSupported && err instanceof TransientError) retryLater();
          throw err;
        } finally {
          running = null;
        }
      })();
      return running;
    }

    // retryLater retries a replay that failed, with a capped, doubling
    // delay, while this worker is alive (where SyncManager is missing).
    function retryLater() {
      if (retryTimer) return;
      const ms = Math.min(opts.retryMs * 2 ** retryStep++, 60000);
      retryTimer = setTimeout(() => {
        retryTimer = 0;
        replay().catch(() => { /* retried again, or by the next trigger */ });
      }, ms);
    }

    async function replayForSync() {
      for (let i = 0; ; i++) {
        try {
          return await replay();
        } catch (err) {
          if (!(err instanceof TransientError) || i >= SYNC_RETRY_MS.length) throw err;
          await new Promise((resolve) => setTimeout(resolve, SYNC_RETRY_MS[i]));
        }
      }
    }

    async function registerSync() {
      if (!opts.syncSupported) return;
      try {
        await self.registration.sync.register(opts.syncTag);
      } catch (err) {
        // Without a sync registration the other triggers still replay.
        console.warn(`${name}: sync.register failed`, err);
      }
    }

    function listen() {
      self.addEventListener('sync', (event) => {
        if (event.tag !== opts.syncTag) return;
        event.waitUntil(replayForSync().catch(async (err) => {
          if (event.lastChance && opts.counts) {
            const { queued } = await opts.counts();
            await tellPages({ type: 'sync-gave-up', tag: opts.syncTag, queued, error: err.message });
          }
          throw err; // the browser retries later
        }));
      });

      self.addEventListener('message', (event) => {
        const msg = event.data || {};
        if (msg.type !== opts.messageType) return;
        const port = event.ports && event.ports[0];
        event.waitUntil(replay().then(
          (r) => { if (port) port.postMessage({ ok: true, ...r }); },
          async (err) => {
            if (port) port.postMessage({ ok: false, error: err.message });
            await tellPages({ type: 'replay-failed', tag: opts.syncTag, error: err.message });
          },
        ));
      });

      // Without SyncManager, a worker that starts replays what is queued.
      if (!opts.syncSupported) {
        replay().catch(() => { /* the next trigger retries */ });
      }
    }

    return { replay, replayForSync, registerSync, listen };
  }

  self.synctraySwCore = { TransientError, tellPages, jsonResponse, createReplayer };
})();
