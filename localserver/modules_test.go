package localserver_test

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"synctray/assets"
	"synctray/localserver"
)

// The client modules are served from the embedded assets whatever app is
// served at /: files only, as JavaScript, revalidated on every use.
func TestModulesServedWhateverTheApp(t *testing.T) {
	e := startHost(t, localserver.Config{Assets: testAssets("// the app's own worker")})
	anon := map[string]string{"Authorization": ""} // public, like the app's own files
	for _, tc := range []struct{ path, file string }{
		{"/synctray/sync.js", "synctray/sync.js"},
		{"/synctray/sw-sync.js", "synctray/sw-sync.js"},
		{"/synctray/sw-sync.mjs", "synctray/sw-sync.mjs"},
		{"/synctray/sw-core.js", "synctray/sw-core.js"},
		{"/synctray/uuid7.js", "synctray/uuid7.js"},
		// Bundled-app files the modules load, one copy at two URLs.
		{"/synctray/idb.js", "idb.js"},
		{"/synctray/sync-policy.js", "sync-policy.js"},
		{"/synctray/live.js", "live.js"},
	} {
		want, err := fs.ReadFile(assets.FS, tc.file)
		if err != nil {
			t.Fatal(err)
		}
		resp, data := e.req("GET", tc.path, nil, anon)
		if resp.StatusCode != 200 || !bytes.Equal(data, want) {
			t.Errorf("GET %s = %d, %d bytes; want 200 and the embedded %s (%d bytes)", tc.path, resp.StatusCode, len(data), tc.file, len(want))
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q, want text/javascript (module scripts need a JS type)", tc.path, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, cc)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", tc.path)
			continue
		}
		if resp, _ := e.req("GET", tc.path, nil, map[string]string{"Authorization": "", "If-None-Match": etag}); resp.StatusCode != 304 {
			t.Errorf("GET %s with If-None-Match: %d, want 304", tc.path, resp.StatusCode)
		}
	}
	// The test app has none of them at its root: /synctray/ is the host's.
	if resp, _ := e.req("GET", "/sync-policy.js", nil, anon); resp.StatusCode != 404 {
		t.Errorf("GET /sync-policy.js from the test app = %d, want 404 (the app's own files at /)", resp.StatusCode)
	}
	for _, p := range []string{"/synctray/", "/synctray", "/synctray/nope.js", "/synctray/synctray/sync.js", "/synctray/assets.go"} {
		resp, data := e.req("GET", p, nil, anon)
		if resp.StatusCode == 200 || resp.StatusCode == 301 && strings.HasSuffix(resp.Header.Get("Location"), "/") {
			t.Errorf("GET %s = %d %s, want no file and no listing", p, resp.StatusCode, data)
		}
		if bytes.Contains(data, []byte("<a href")) {
			t.Errorf("GET %s lists files: %s", p, data)
		}
	}
	if resp, _ := e.req("POST", "/synctray/sync.js", "{}", nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /synctray/sync.js = %d (Allow %q), want 405", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
