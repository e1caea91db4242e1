package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

func TestShell(t *testing.T) {
	e := newEnv(t, options{})

	t.Run("the service worker installs, precaches the shell under its version and controls the page", func(t *testing.T) {
		e.in(t)
		version := e.swVersion()
		// Besides synctray-data (the last answers to the page's reads, see
		// TestReloadWhileHostDown), the shell has its one versioned cache.
		got := slices.DeleteFunc(e.cacheNames(), func(n string) bool { return n == "synctray-data" })
		if want := []string{"synctray-shell-" + version}; !slices.Equal(got, want) {
			t.Fatalf("caches = %q (besides synctray-data), want %q", got, want)
		}
		cached := eval[[]string](e, `caches.open('synctray-shell-`+version+`').then((c) => c.keys()).then((rs) => rs.map((r) => new URL(r.url).pathname))`)
		for _, p := range []string{"/", "/app.js", "/sw.js", "/idb.js", "/style.css", "/manifest.webmanifest", "/icons/icon-192.png", "/icons/maskable-512.png"} {
			inCache := slices.Contains(cached, p)
			if want := p != "/sw.js"; inCache != want {
				t.Errorf("%s in the shell cache = %v, want %v (cache holds %q)", p, inCache, want, cached)
			}
		}
		if got := eval[string](e, `navigator.serviceWorker.controller.scriptURL`); got != e.origin+"/sw.js" {
			t.Fatalf("controller = %q, want %s/sw.js", got, e.origin)
		}
	})

	t.Run("the page is labelled and keyboard accessible", func(t *testing.T) {
		e.in(t)
		if n := eval[int](e, `document.getElementById('text').labels.length`); n != 1 {
			t.Errorf("the message box has %d labels, want 1", n)
		}
		unnamed := eval[[]string](e, `[...document.querySelectorAll('button')].filter((b) => !b.hidden && !(b.getAttribute('aria-label') || b.textContent.trim())).map((b) => b.outerHTML)`)
		if len(unnamed) > 0 {
			t.Errorf("buttons without a name: %q", unnamed)
		}
		for sel, want := range map[string]string{"#conn": "status", "#notice": "alert"} {
			if got := eval[string](e, `document.querySelector('`+sel+`').getAttribute('role')`); got != want {
				t.Errorf("%s role = %q, want %q", sel, got, want)
			}
		}
		if got := eval[string](e, `document.getElementById('announce').getAttribute('aria-live')`); got != "polite" {
			t.Errorf("announcements aria-live = %q, want polite", got)
		}
		// Tab from the top reaches the skip link, then Sync now and the
		// Work offline switch, then the message box.
		var order []string
		e.do(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
		for range 4 {
			e.do(chromedp.KeyEvent("\t"))
			order = append(order, eval[string](e, `document.activeElement.id || document.activeElement.className`))
		}
		if want := []string{"skip", "sync-now", "work-offline", "text"}; !slices.Equal(order, want) {
			t.Errorf("tab order = %q, want %q", order, want)
		}
		// Ctrl+Enter in the message box sends.
		e.do(chromedp.SendKeys(chromedp.ID("text"), "typed with the keyboard"))
		e.do(chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
		e.waitJS("the typed message is listed", `[...document.querySelectorAll('#messages .msg-text')].some((p) => p.textContent === 'typed with the keyboard')`)
	})

	t.Run("the manifest makes the app installable", func(t *testing.T) {
		e.in(t)
		// Chromium's own verdict first.
		inst, err := chromedp.Call(e.ctx, page.GetInstallabilityErrors, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		if len(inst.InstallabilityErrors) > 0 {
			t.Fatalf("Chromium finds the app not installable: %+v", inst.InstallabilityErrors)
		}
		man, err := chromedp.Call(e.ctx, page.GetAppManifest, page.GetAppManifestParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(man.Errors) > 0 || man.URL != e.origin+"/manifest.webmanifest" {
			t.Fatalf("manifest %s parsed with errors %+v", man.URL, man.Errors)
		}
		type icon struct{ Src, Sizes, Purpose string }
		m := eval[struct {
			Name      string `json:"name"`
			ShortName string `json:"short_name"`
			StartURL  string `json:"start_url"`
			Scope     string `json:"scope"`
			Display   string `json:"display"`
			Theme     string `json:"theme_color"`
			BG        string `json:"background_color"`
			Icons     []icon `json:"icons"`
		}](e, `fetch('/manifest.webmanifest').then((r) => r.json())`)
		if m.Name == "" || m.ShortName == "" || m.StartURL != "/" || m.Scope != "/" || m.Display != "standalone" || m.Theme == "" || m.BG == "" {
			t.Fatalf("manifest = %+v, want name, short_name, start_url /, scope /, standalone, colours", m)
		}
		var sizes []string
		maskable := false
		for _, ic := range m.Icons {
			sizes = append(sizes, ic.Sizes)
			maskable = maskable || strings.Contains(ic.Purpose, "maskable")
			dims := eval[[]int](e, `new Promise((ok, fail) => { const i = new Image(); i.onload = () => ok([i.naturalWidth, i.naturalHeight]); i.onerror = fail; i.src = '`+ic.Src+`'; })`)
			if want := ic.Sizes; fmt.Sprintf("%dx%d", dims[0], dims[1]) != want {
				t.Errorf("icon %s is %dx%d, want %s", ic.Src, dims[0], dims[1], want)
			}
		}
		if !slices.Contains(sizes, "192x192") || !slices.Contains(sizes, "512x512") || !maskable {
			t.Fatalf("icons = %+v, want 192 and 512 PNGs and a maskable one", m.Icons)
		}
	})

	t.Run("with the host stopped the shell still loads, from the cache", func(t *testing.T) {
		e.in(t)
		e.stopHost()
		e.reload()
		e.waitJS("the page shows the host is unreachable", `document.getElementById('conn').dataset.state === 'host-down'`)
		if got := e.text("h1"); !strings.Contains(got, "synctray") {
			t.Fatalf("heading = %q, want the app's", got)
		}
		if got := eval[bool](e, `!!document.querySelector('#compose textarea')`); !got {
			t.Fatal("the compose form is missing offline")
		}
	})

	t.Run("a browser without a session is told how to sign in", func(t *testing.T) {
		e.in(t)
		e.startHost()
		ctx, cancel := chromedp.NewContext(e.ctx, chromedp.WithNewBrowserContext())
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.origin+"/")); err != nil {
			t.Fatal(err)
		}
		e.waitJSIn(ctx, "the sign-in notice", `!document.getElementById('notice').hidden`)
		got := evalIn[string](e, ctx, `document.getElementById('notice').textContent`)
		if !strings.Contains(got, "Run synctray open (or use the tray's Open synctray) to sign in") {
			t.Fatalf("notice = %q, want it to say: Run synctray open (or use the tray's Open synctray) to sign in", got)
		}
	})
}
