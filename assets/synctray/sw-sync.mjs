// sw-sync.mjs: sw-sync.js for module service workers
// (navigator.serviceWorker.register('/sw.js', {type: 'module'})):
//
//   // your sw.js, before your own listeners:
//   import '/synctray/sw-sync.mjs';
//
// The same code as the classic script: module workers have no
// importScripts, so the shared pieces are imported here first, in order
// (each is a classic script that also runs as a module), and sw-sync.js
// then finds them loaded. See sw-sync.js for what it does.
import './sync-policy.js';
import './idb.js';
import './uuid7.js';
import './sw-core.js';
import './sw-sync.js';
