package localserver_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver"
)

// writeApp makes an app dir holding files (name → content; names may
// have directories).
func writeApp(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// page sends a request as a browser would, without the API token.
func (e *env) page(method, path string, hdr map[string]string) (*http.Response, string) {
	e.t.Helper()
	h := map[string]string{"Authorization": ""}
	for k, v := range hdr {
		h[k] = v
	}
	resp, body := e.req(method, path, nil, h)
	return resp, string(body)
}

// navigate is what a browser sends when it loads a page.
var navigate = map[string]string{
	"Accept":         "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
	"Sec-Fetch-Mode": "navigate",
}

const appIndex = "<!doctype html><title>my app</title><script src=/app.js></script>"

func myApp(t *testing.T) string {
	return writeApp(t, map[string]string{
		"index.html":           appIndex,
		"app.js":               "console.log('my app')",
		"sw.js":                "const VERSION = '__SYNCTRAY_VERSION__'; self.addEventListener('fetch', () => {})",
		"lib/mod.mjs":          "export const x = 1",
		"data.json":            `{"a":1}`,
		"manifest.webmanifest": `{"name":"my app"}`,
		"logo.svg":             "<svg xmlns='http://www.w3.org/2000/svg'/>",
		"prog.wasm":            "\x00asm\x01\x00\x00\x00",
		"style.css":            "body{}",
		"notes":                "<html><script>alert(1)</script></html>",
		"docs/index.html":      "<title>docs index</title>",
		".env":                 "SECRET=1",
		".git/config":          "[core]",
		"lib/.hidden.js":       "HIDDEN-CONTENT",
	})
}

func TestAppDirIsServedAtTheRoot(t *testing.T) {
	e := startHost(t, localserver.Config{AppDir: myApp(t)})

	t.Run("serves the app dir's index.html at / instead of the bundled app", func(t *testing.T) {
		resp, body := e.page("GET", "/", nil)
		if resp.StatusCode != 200 || body != appIndex {
			t.Fatalf("GET / = %d %q, want 200 and the app dir's index.html", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("Content-Type = %q, want text/html; charset=utf-8", ct)
		}
	})

	t.Run("serves each file with its Content-Type", func(t *testing.T) {
		for path, want := range map[string]string{
			"/index.html":           "text/html; charset=utf-8",
			"/app.js":               "text/javascript; charset=utf-8",
			"/lib/mod.mjs":          "text/javascript; charset=utf-8",
			"/data.json":            "application/json",
			"/manifest.webmanifest": "application/manifest+json",
			"/logo.svg":             "image/svg+xml",
			"/prog.wasm":            "application/wasm",
			"/style.css":            "text/css; charset=utf-8",
			"/notes":                "application/octet-stream", // not sniffed into a page
		} {
			resp, _ := e.page("GET", path, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != want {
				t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), want)
			}
		}
	})

	t.Run("sends the bundled app's security headers and Cache-Control: no-cache", func(t *testing.T) {
		bundled := startHost(t, localserver.Config{})
		want, _ := bundled.page("GET", "/", nil)
		_, bport, _ := net.SplitHostPort(strings.TrimPrefix(bundled.url, "http://"))
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.url, "http://"))
		for _, path := range []string{"/", "/app.js", "/sw.js", "/some/route"} {
			resp, _ := e.page("GET", path, navigate)
			for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
				if got, w := resp.Header.Get(h), strings.ReplaceAll(want.Header.Get(h), bport, port); got != w || w == "" {
					t.Errorf("GET %s: %s = %q, want the bundled app's %q", path, h, got, w)
				}
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("GET %s: Cache-Control = %q, want no-cache", path, cc)
			}
		}
	})

	t.Run("answers 404 for a directory, with neither a listing nor its index.html", func(t *testing.T) {
		for _, path := range []string{"/docs", "/docs/", "/lib/", "/app.js/"} {
			resp, body := e.page("GET", path, map[string]string{"Accept": "*/*"})
			if resp.StatusCode != 404 || strings.Contains(body, "docs index") || strings.Contains(body, "mod.mjs") {
				t.Errorf("GET %s = %d %q, want 404 without a listing", path, resp.StatusCode, body)
			}
		}
	})

	t.Run("answers a page navigation to a path that is not a file with index.html", func(t *testing.T) {
		for _, c := range []struct {
			path string
			hdr  map[string]string
		}{
			{"/todos/7", navigate},
			{"/docs/", navigate}, // the app's index.html, not docs/index.html
			{"/settings", map[string]string{"Accept": "text/html"}},
			{"/settings", map[string]string{"Accept": "*/*", "Sec-Fetch-Mode": "navigate"}},
		} {
			resp, body := e.page("GET", c.path, c.hdr)
			if resp.StatusCode != 200 || body != appIndex || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Errorf("GET %s %v = %d %q, want 200 and the app's index.html", c.path, c.hdr, resp.StatusCode, body)
			}
		}
		resp, body := e.page("HEAD", "/todos/7", navigate)
		if resp.StatusCode != 200 || body != "" {
			t.Errorf("HEAD /todos/7 = %d %q, want 200 without a body", resp.StatusCode, body)
		}
	})

	t.Run("answers 404 for a missing asset", func(t *testing.T) {
		for _, accept := range []string{"", "*/*", "image/avif,image/webp,*/*;q=0.8", "application/json, text/html;q=0.5", "text/html;q=0"} {
			resp, body := e.page("GET", "/missing.js", map[string]string{"Accept": accept})
			if resp.StatusCode != 404 || strings.Contains(body, "my app") {
				t.Errorf("GET /missing.js (Accept %q) = %d %q, want 404", accept, resp.StatusCode, body)
			}
		}
	})

	t.Run("serves the app's own sw.js as it is, allowed to control /", func(t *testing.T) {
		resp, body := e.page("GET", "/sw.js", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, "'__SYNCTRAY_VERSION__'") {
			t.Fatalf("GET /sw.js = %d %q, want it untouched", resp.StatusCode, body)
		}
		if resp.Header.Get("Service-Worker-Allowed") != "/" || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Fatalf("GET /sw.js: Service-Worker-Allowed %q, Content-Type %q; want / and text/javascript",
				resp.Header.Get("Service-Worker-Allowed"), resp.Header.Get("Content-Type"))
		}
	})

	t.Run("never serves dotfiles, not even to a navigation", func(t *testing.T) {
		for _, path := range []string{"/.env", "/.git/config", "/.git/", "/lib/.hidden.js"} {
			for _, hdr := range []map[string]string{nil, navigate} {
				resp, body := e.page("GET", path, hdr)
				if resp.StatusCode != 404 || strings.Contains(body, "SECRET") || strings.Contains(body, "[core]") || strings.Contains(body, "HIDDEN-CONTENT") {
					t.Errorf("GET %s (%v) = %d %q, want 404", path, hdr, resp.StatusCode, body)
				}
			}
		}
	})

	t.Run("refuses other methods with 405", func(t *testing.T) {
		for _, m := range []string{"POST", "PUT", "DELETE"} {
			if resp, _ := e.page(m, "/app.js", map[string]string{"Origin": e.url}); resp.StatusCode != 405 {
				t.Errorf("%s /app.js = %d, want 405", m, resp.StatusCode)
			}
		}
	})
}

// rawGet sends path to the host exactly as written, past any client-side
// cleaning, and returns the status and body.
func rawGet(t *testing.T, e *env, path string) (int, string) {
	t.Helper()
	addr := strings.TrimPrefix(e.url, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAppDirKeepsToItsDirectory(t *testing.T) {
	dir := writeApp(t, map[string]string{"index.html": appIndex, "app.js": "app", "sub/a.js": "in sub"})
	parent := filepath.Dir(dir)
	if err := os.WriteFile(filepath.Join(parent, "secret.txt"), []byte("TOP SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent, "outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "outside", "s.txt"), []byte("TOP SECRET TOO"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"leak.txt":  "../secret.txt",
		"abs.txt":   filepath.Join(parent, "secret.txt"),
		"outdir":    "../outside",
		"alias.js":  "app.js",
		"sublink":   "sub",
		"sub/up.js": "../app.js",
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	e := startHost(t, localserver.Config{AppDir: dir})

	t.Run("a path with .. never leaves the app dir", func(t *testing.T) {
		for _, path := range []string{"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/sub/..%2f..%2fsecret.txt", "/sub/../../outside/s.txt", "//../secret.txt"} {
			code, body := rawGet(t, e, path)
			if code == 200 || strings.Contains(body, "SECRET") {
				t.Errorf("GET %s = %d %q, want no file from outside the app dir", path, code, body)
			}
		}
	})

	t.Run("a symbolic link that resolves outside the app dir is refused, even to a navigation", func(t *testing.T) {
		unixSymlinks(t)
		for _, path := range []string{"/leak.txt", "/abs.txt", "/outdir/s.txt", "/outdir/"} {
			for _, hdr := range []map[string]string{nil, {"Accept": "*/*"}} {
				resp, body := e.page("GET", path, hdr)
				if resp.StatusCode != 404 || strings.Contains(body, "SECRET") {
					t.Errorf("GET %s (%v) = %d %q, want 404", path, hdr, resp.StatusCode, body)
				}
			}
			resp, body := e.page("GET", path, navigate)
			if strings.Contains(body, "SECRET") || (path != "/outdir/" && resp.StatusCode != 404) {
				t.Errorf("navigate %s = %d %q, want 404", path, resp.StatusCode, body)
			}
		}
	})

	t.Run("a symbolic link that stays inside the app dir is followed", func(t *testing.T) {
		unixSymlinks(t)
		for path, want := range map[string]string{"/alias.js": "app", "/sublink/a.js": "in sub", "/sub/up.js": "app"} {
			resp, body := e.page("GET", path, nil)
			if resp.StatusCode != 200 || body != want {
				t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
			}
		}
	})
}

func TestAppDirIsReadFromDiskAtEachRequest(t *testing.T) {
	dir := writeApp(t, map[string]string{"index.html": appIndex, "app.js": "v1"})
	e := startHost(t, localserver.Config{AppDir: dir})
	resp, body := e.page("GET", "/app.js", nil)
	if body != "v1" {
		t.Fatalf("GET /app.js = %q, want v1", body)
	}
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	fi, err := os.Stat(filepath.Join(dir, "app.js"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("an edit of the same size within the same second is served, not answered 304", func(t *testing.T) {
		p := filepath.Join(dir, "app.js")
		if err := os.WriteFile(p, []byte("v2"), 0o644); err != nil {
			t.Fatal(err)
		}
		// The clock may not have moved: set a time in the same second.
		mt := fi.ModTime().Truncate(time.Second).Add(time.Millisecond)
		if mt.Equal(fi.ModTime()) {
			mt = mt.Add(time.Millisecond)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		resp, body := e.page("GET", "/app.js", map[string]string{"If-None-Match": etag, "If-Modified-Since": lastMod})
		if resp.StatusCode != 200 || body != "v2" {
			t.Fatalf("conditional GET after an edit = %d %q, want 200 v2", resp.StatusCode, body)
		}
		if resp, _ := e.page("GET", "/app.js", map[string]string{"If-None-Match": resp.Header.Get("ETag")}); resp.StatusCode != 304 {
			t.Fatalf("conditional GET of an unchanged file = %d, want 304", resp.StatusCode)
		}
	})

	t.Run("a file added while the host runs is served", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "new.js"), []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
		if resp, body := e.page("GET", "/new.js", nil); resp.StatusCode != 200 || body != "new" {
			t.Fatalf("GET /new.js = %d %q, want 200 new", resp.StatusCode, body)
		}
	})

	t.Run("an app dir deleted and built again is served", func(t *testing.T) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if resp, _ := e.page("GET", "/app.js", nil); resp.StatusCode == 200 {
			t.Fatalf("GET /app.js of a deleted app dir = 200")
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("rebuilt"), 0o644); err != nil {
			t.Fatal(err)
		}
		if resp, body := e.page("GET", "/", nil); resp.StatusCode != 200 || body != "rebuilt" {
			t.Fatalf("GET / = %d %q, want the rebuilt index.html", resp.StatusCode, body)
		}
	})
}

func TestReservedPaths(t *testing.T) {
	t.Run("are the host's paths of design §12", func(t *testing.T) {
		var got []string
		for _, p := range localserver.ReservedPaths {
			got = append(got, p.Path)
		}
		want := []string{"/api/", "/ws", "/healthz", "/metrics", "/login", "/synctray/", "/upstream/"}
		if !slices.Equal(got, want) {
			t.Fatalf("ReservedPaths = %q, want %q", got, want)
		}
	})

	open := func(t *testing.T, dir string) error {
		t.Helper()
		h, err := localserver.Open(localserver.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", UpstreamURL: "http://127.0.0.1:1", AppDir: dir})
		if err == nil {
			h.Close()
		}
		return err
	}

	t.Run("an app dir that would shadow one is refused at Open, naming the entry and the path", func(t *testing.T) {
		for i, p := range localserver.ReservedPaths {
			kind, files := "file", map[string]string{"index.html": appIndex, p.Name(): "x"}
			if i%2 == 0 {
				kind, files = "directory", map[string]string{"index.html": appIndex, p.Name() + "/index.html": "x"}
			}
			err := open(t, writeApp(t, files))
			want := `its ` + kind + ` "` + p.Name() + `" would shadow the host's own ` + p.Path
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Open with a top-level %s %q: %v, want an error saying %q", kind, p.Name(), err, want)
			}
		}
	})

	t.Run("a missing app dir or a file is refused at Open", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope")
		if err := open(t, missing); err == nil || err.Error() != "app dir "+missing+" does not exist" {
			t.Errorf("Open with a missing app dir: %v", err)
		}
		file := filepath.Join(writeApp(t, map[string]string{"index.html": appIndex}), "index.html")
		if err := open(t, file); err == nil || err.Error() != "app dir "+file+" is not a directory" {
			t.Errorf("Open with a file as app dir: %v", err)
		}
	})

	t.Run("a host path is never answered from the app dir, even when one appears later", func(t *testing.T) {
		dir := writeApp(t, map[string]string{"index.html": appIndex})
		e := startHost(t, localserver.Config{AppDir: dir})
		for _, f := range []string{"synctray/sw-sync.js", "upstream/todos", "api/status", "healthz/x"} {
			p := filepath.Join(dir, filepath.FromSlash(f))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte("from the app dir"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, path := range []string{"/synctray/sw-sync.js", "/synctray/", "/upstream/todos", "/upstream/todos/7", "/healthz/x", "/ws/x", "/login/x"} {
			for _, hdr := range []map[string]string{nil, navigate} {
				resp, body := e.page("GET", path, hdr)
				want := 404
				switch {
				case strings.HasPrefix(path, "/upstream/"):
					want = 401 // guarded like /api/: the page has no session here
				case path == "/synctray/sw-sync.js":
					want = 200 // the host's own module, not the app dir's file
				}
				if resp.StatusCode != want || strings.Contains(body, "from the app dir") || strings.Contains(body, "my app") {
					t.Errorf("GET %s (%v) = %d %q, want the host's %d", path, hdr, resp.StatusCode, body, want)
				}
			}
		}
		if resp, _ := e.page("GET", "/api/status", nil); resp.StatusCode != 401 {
			t.Errorf("GET /api/status without a token = %d, want the API's 401", resp.StatusCode)
		}
		if resp, body := e.page("GET", "/healthz", nil); resp.StatusCode != 200 || !strings.Contains(body, `"app":"synctray"`) {
			t.Errorf("GET /healthz = %d %q, want the host's health check", resp.StatusCode, body)
		}
	})

	t.Run("Open refuses Assets and AppDir together", func(t *testing.T) {
		_, err := localserver.Open(localserver.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", UpstreamURL: "http://127.0.0.1:1",
			AppDir: writeApp(t, map[string]string{"index.html": appIndex}), Assets: testAssets("")})
		if err == nil || !strings.Contains(err.Error(), "both Assets and AppDir") {
			t.Fatalf("Open: %v, want a refusal", err)
		}
	})
}

// unixSymlinks skips a test of symbolic links on Windows, where making one
// needs administrator rights or developer mode (and wine's differ).
func unixSymlinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		testsupport.Skip(t, "symbolic links on Windows need administrator rights or developer mode")
	}
}
