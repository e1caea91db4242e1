// Package assets holds the PWA served by the local host, embedded in the
// binary so that it runs with no files beside it.
package assets

import "embed"

// FS holds the app shell: HTML, JS, CSS, manifest and icons, and under
// synctray/ the client modules any app can use (served at /synctray/).
//
//go:embed index.html style.css app.js api.js live.js push.js view.js uuid.js idb.js sync-policy.js sw.js manifest.webmanifest icons/*.png icons/*.svg
//go:embed synctray/sw-core.js synctray/sw-sync.js synctray/sw-sync.mjs synctray/sync.js synctray/uuid7.js
var FS embed.FS
