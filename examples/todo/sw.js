// The todo app's service worker.
//
// synctray's module first: it takes the /upstream/ writes the host cannot
// take right now (host not running) into IndexedDB and replays them, in
// order and once, when the host is back. It must come before this file's
// own fetch listener (see the header of /synctray/sw-sync.js).
importScripts('/synctray/sw-sync.js');

// The rest is this app's own: the shell is cached so that the app opens
// with the host stopped, and the last list read is kept so that it shows.
const SHELL_CACHE = 'todo-shell-v1';
const DATA_CACHE = 'todo-data-v1';
const SHELL = ['/', '/app.js', '/style.css', '/manifest.webmanifest', '/icon.svg', '/synctray/sync.js'];
// The host's own paths: never cached here.
const HOST_ONLY = ['/api/', '/ws', '/healthz', '/login'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== SHELL_CACHE && name !== DATA_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return; // writes: sw-sync.js's (above), or the network
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || HOST_ONLY.some((p) => url.pathname.startsWith(p))) return;
  if (url.pathname.startsWith('/upstream/')) {
    event.respondWith(networkFirst(req, DATA_CACHE, true));
  } else if (req.mode === 'navigate') {
    event.respondWith(networkFirst(req, SHELL_CACHE, false, '/'));
  } else {
    // The shell, and the modules /synctray/sync.js imports: from the
    // network while the host runs (so edits show), else from the cache.
    event.respondWith(networkFirst(req, SHELL_CACHE, false));
  }
});

// networkFirst asks the host; what it answers 200 is kept; when the host
// does not answer, the kept copy (of fallback) is used.
async function networkFirst(req, cacheName, mark, fallback) {
  const cache = await caches.open(cacheName);
  try {
    const resp = await fetch(req);
    if (resp.ok) await cache.put(fallback || req, resp.clone());
    return resp;
  } catch (err) {
    const hit = (await cache.match(fallback || req, { ignoreSearch: !!fallback })) || (fallback && (await cache.match('/')));
    if (!hit) throw err;
    if (!mark) return hit;
    // The page tells the user that this list is an old copy.
    const headers = new Headers(hit.headers);
    headers.set('X-Todo-Cache', 'worker');
    return new Response(await hit.blob(), { status: hit.status, statusText: hit.statusText, headers });
  }
}
