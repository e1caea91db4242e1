package localserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

// shell serves the PWA's files. The service worker (/sw.js) is served with
// two placeholders filled in: __SYNCTRAY_VERSION__ becomes a hash of every
// asset, so any change to any asset makes a new worker with a new cache,
// and __SYNCTRAY_PRECACHE__ becomes the JSON list of the shell's paths.
type shell struct {
	fsys    fs.FS
	version string
	sw      []byte
	files   http.Handler
}

func init() {
	// The web app manifest's registered type (the default table lacks it).
	mime.AddExtensionType(".webmanifest", "application/manifest+json")
}

func newShell(fsys fs.FS) (*shell, error) {
	h := sha256.New()
	precache := []string{"/"}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		if p != "sw.js" && p != "index.html" && !strings.HasPrefix(path.Base(p), ".") {
			precache = append(precache, "/"+p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read assets: %w", err)
	}
	slices.Sort(precache[1:])
	s := &shell{fsys: fsys, version: hex.EncodeToString(h.Sum(nil))[:16], files: http.FileServerFS(fsys)}
	if sw, err := fs.ReadFile(fsys, "sw.js"); err == nil {
		list, _ := json.Marshal(precache)
		sw = bytes.ReplaceAll(sw, []byte("__SYNCTRAY_VERSION__"), []byte(s.version))
		sw = bytes.ReplaceAll(sw, []byte("__SYNCTRAY_PRECACHE__"), list)
		s.sw = sw
	}
	return s, nil
}

func (s *shell) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		closeUnreadBody(w, r)
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	switch r.URL.Path {
	case "/":
		// Always revalidate the entry page; the worker serves it offline.
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, s.fsys, "index.html")
	case "/sw.js":
		if s.sw == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Service-Worker-Allowed", "/")
		// An ETag of the asset hash, not a Last-Modified: a host restarted
		// within the same second with other assets must not answer 304.
		w.Header().Set("ETag", `"`+s.version+`"`)
		http.ServeContent(w, r, "sw.js", time.Time{}, bytes.NewReader(s.sw))
	default:
		// Files only: a directory (or a path ending in /) is not found
		// rather than listed.
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if fi, err := fs.Stat(s.fsys, name); err != nil || fi.IsDir() || strings.HasSuffix(r.URL.Path, "/") {
			writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		s.files.ServeHTTP(w, r)
	}
}
