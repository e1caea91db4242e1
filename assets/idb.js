// idb.js: the browser's outbox, in IndexedDB (store "outbox"). A classic
// script, so that the page (a <script> tag) and the service workers
// (importScripts, or an ES-module import for its side effect) use the same
// code. It defines self.synctrayIDB.open(dbName), an outbox in the database
// dbName, and self.synctrayOutbox, the bundled app's (database "synctray").
// The host serves it at /idb.js and /synctray/idb.js (for sw-sync.js, in
// the database "synctray-sw-sync").
//
// An entry is {id, key, created, state, error?, ...fields}: id is an
// auto-increment (FIFO order), key the action's Idempotency-Key (unique),
// state "queued" or "failed" (the host refused it for good; error says why);
// the other fields are what the caller added (the bundled app: type and
// payload; sw-sync.js: method, url, headers, body).
(function (global) {
  'use strict';

  const DB_VERSION = 1;
  const STORE = 'outbox';

  function openOutbox(DB_NAME) {
  let opening = null;

  function open() {
    if (!opening) {
      opening = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB_NAME, DB_VERSION);
        req.onupgradeneeded = () => {
          const store = req.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
          store.createIndex('key', 'key', { unique: true });
          store.createIndex('state', 'state');
        };
        req.onsuccess = () => {
          const db = req.result;
          db.onversionchange = () => { db.close(); opening = null; };
          db.onclose = () => { opening = null; };
          resolve(db);
        };
        req.onerror = () => { opening = null; reject(req.error); };
      });
    }
    return opening;
  }

  // run runs fn(store) in one transaction and resolves with fn's result
  // once the transaction has committed. durability "strict" waits for the
  // disk: used where losing the write would lose a user's message.
  async function run(mode, fn, durability = 'relaxed') {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode, { durability });
      let result;
      Promise.resolve(fn(tx.objectStore(STORE))).then((r) => { result = r; }, (err) => {
        try { tx.abort(); } catch { /* already finished */ }
        reject(err);
      });
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('IndexedDB transaction aborted'));
    });
  }

  function req(r) {
    return new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }

  const outbox = {
    // add stores a new queued entry unless its key is already there; it
    // resolves with {added, entry}. The write is durable when it resolves.
    add(action) {
      return run('readwrite', async (store) => {
        const existing = await req(store.index('key').get(action.key));
        if (existing) return { added: false, entry: existing };
        const entry = { ...action, created: action.created || Date.now(), state: 'queued' };
        delete entry.id;
        delete entry.error;
        entry.id = await req(store.add(entry));
        return { added: true, entry };
      }, 'strict');
    },

    // queued returns up to limit queued entries, oldest first.
    queued(limit) {
      return run('readonly', (store) => req(store.index('state').getAll('queued', limit)));
    },

    // all returns every entry, oldest first.
    all() {
      return run('readonly', (store) => req(store.getAll()));
    },

    // settle records a replay's outcome in one transaction: the ids in
    // remove are deleted (the host holds them), and each of failed
    // ({id, error}) is kept, marked failed with its reason.
    settle(remove, failed) {
      return run('readwrite', async (store) => {
        for (const id of remove) store.delete(id);
        for (const f of failed) {
          const entry = await req(store.get(f.id));
          if (entry) {
            entry.state = 'failed';
            entry.error = f.error;
            store.put(entry);
          }
        }
      });
    },

    // dismiss deletes a failed entry the user has seen.
    dismiss(key) {
      return run('readwrite', async (store) => {
        const entry = await req(store.index('key').get(key));
        if (entry && entry.state === 'failed') store.delete(entry.id);
      });
    },

    // counts returns {queued, failed}.
    counts() {
      return run('readonly', async (store) => {
        const idx = store.index('state');
        const [queued, failed] = await Promise.all([req(idx.count('queued')), req(idx.count('failed'))]);
        return { queued, failed };
      });
    },
  };

  return outbox;
  }

  global.synctrayIDB = { open: openOutbox };
  global.synctrayOutbox = openOutbox('synctray');
})(self);
