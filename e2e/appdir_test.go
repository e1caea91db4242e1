package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"
)

// A tiny app of a developer's own: a page, a script that registers the
// app's worker, and a worker that precaches the shell and serves every
// navigation from it (a single-page app).
var tinyApp = map[string]string{
	"index.html": `<!doctype html><html><head><meta charset="utf-8"><title>tiny</title></head>
<body><h1 id="hello">hello from my own app</h1><script src="/app.js"></script></body></html>`,
	"app.js": `navigator.serviceWorker.register('/sw.js')
	.then(() => navigator.serviceWorker.ready)
	.then(() => { document.documentElement.dataset.ready = 'true'; });`,
	"sw.js": `const CACHE = 'tiny-v1';
self.addEventListener('install', (e) => {
	e.waitUntil(caches.open(CACHE).then((c) => c.addAll(['/', '/app.js'])).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
	if (e.request.method !== 'GET') return;
	const req = e.request.mode === 'navigate' ? '/' : e.request;
	e.respondWith(caches.match(req, {ignoreSearch: true}).then((hit) => hit || fetch(e.request)));
});`,
}

func TestOwnApp(t *testing.T) {
	t.Run("an app dir's own worker registers, caches the app and loads it with the host stopped", func(t *testing.T) {
		dir := t.TempDir()
		for name, body := range tinyApp {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// newEnv opens the app and waits until /sw.js controls it.
		e := newEnv(t, options{appDir: dir})
		if got := e.text("#hello"); got != "hello from my own app" {
			t.Fatalf("#hello = %q, want the app dir's page", got)
		}
		if got := e.cacheNames(); !slices.Equal(got, []string{"tiny-v1"}) {
			t.Fatalf("caches = %q, want only the app's own tiny-v1", got)
		}
		e.do(chromedp.Navigate(e.origin + "/todos/7"))
		e.waitJS("a deep link loads the app while online", `document.documentElement.dataset.ready === 'true' && location.pathname === '/todos/7'`)

		e.stopHost()
		if got := eval[string](e, `fetch('/healthz').then(() => 'up', () => 'down')`); got != "down" {
			t.Fatalf("the host answers /healthz (%s) after it stopped", got)
		}
		e.reload()
		if got := e.text("#hello"); got != "hello from my own app" {
			t.Fatalf("#hello offline = %q, want the page from the app's cache", got)
		}
		e.do(chromedp.Navigate(e.origin + "/"))
		e.waitJS("the app loads at / from its own cache with the host stopped",
			`document.documentElement.dataset.ready === 'true' && location.pathname === '/' && navigator.serviceWorker.controller !== null`)
		if got := e.text("#hello"); got != "hello from my own app" {
			t.Fatalf("#hello at / offline = %q, want the page from the app's cache", got)
		}
	})
}
