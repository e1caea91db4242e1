package e2e

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"synctray/assets"
)

func TestCacheVersion(t *testing.T) {
	t.Run("a new asset version replaces the old shell cache on the next activation", func(t *testing.T) {
		e := newEnv(t, options{})
		v1 := e.swVersion()
		if got, want := shellCaches(e), []string{"synctray-shell-" + v1}; !slices.Equal(got, want) {
			t.Fatalf("caches = %q, want %q", got, want)
		}

		// The same host, data dir and port, with one asset changed, at once:
		// /sw.js is validated by an ETag of the asset hash, not by time.
		const marker = "/* e2e: version 2 */"
		e.stopHost()
		e.assets = changedAssets(t, "style.css", marker)
		e.startHost()
		v2 := e.swVersion()
		if v2 == v1 {
			t.Fatalf("version %s did not change with the assets", v1)
		}

		eval[bool](e, `navigator.serviceWorker.getRegistration().then((r) => r.update()).then(() => true)`)
		want := []string{"synctray-shell-" + v2}
		var got []string
		if !poll(func() bool { got = shellCaches(e); return slices.Equal(got, want) }) {
			t.Fatalf("caches = %q, want only %q", got, want)
		}
		css := eval[string](e, `caches.open('synctray-shell-`+v2+`').then((c) => c.match('/style.css')).then((r) => r.text())`)
		if !strings.Contains(css, marker) {
			t.Fatal("the new cache holds the old style.css")
		}
		e.waitJS("the new worker controls the page", `navigator.serviceWorker.controller && navigator.serviceWorker.controller.state === 'activated'`)
	})
}

// shellCaches returns the names of the shell caches (not the data cache).
func shellCaches(e *env) []string {
	var names []string
	for _, n := range e.cacheNames() {
		if strings.HasPrefix(n, "synctray-shell-") {
			names = append(names, n)
		}
	}
	return names
}

// changedAssets copies the embedded assets, appending extra to one file.
func changedAssets(t *testing.T, name, extra string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(assets.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets.FS, p)
		if err != nil {
			return err
		}
		if p == name {
			b = append(slices.Clip(b), extra...)
		}
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m[name]; !ok {
		t.Fatalf("no asset %s", name)
	}
	return m
}
