package localserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"synctray/assets"
)

// ModulesPrefix is where the host serves synctray's client modules
// (sync.js, sw-sync.js, sw-sync.mjs and what they load), from the embedded
// assets, whatever app is served at /.
const ModulesPrefix = "/synctray/"

// moduleAliases are bundled-app files that the modules load too, served
// under ModulesPrefix from the assets' root: one copy, two URLs.
var moduleAliases = []string{"idb.js", "sync-policy.js", "live.js"}

// modules serves ModulesPrefix: files only (no listings), GET and HEAD,
// JavaScript as text/javascript, revalidated on every use (no-cache, with
// an ETag of the content), so an app and its worker always get the modules
// of the running host.
type modules struct {
	files map[string]moduleFile // by name under ModulesPrefix
}

type moduleFile struct {
	data  []byte
	ctype string
	etag  string
}

func newModules() (*modules, error) {
	return newModulesFS(assets.FS)
}

func newModulesFS(fsys fs.FS) (*modules, error) {
	m := &modules{files: map[string]moduleFile{}}
	add := func(name, file string) error {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m.files[name] = moduleFile{data: b, ctype: moduleType(name), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	}
	err := fs.WalkDir(fsys, "synctray", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path.Base(p), ".") {
			return err
		}
		return add(strings.TrimPrefix(p, "synctray/"), p)
	})
	if err != nil {
		return nil, err
	}
	for _, name := range moduleAliases {
		if err := add(name, name); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func moduleType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".json", ".map":
		return "application/json"
	default:
		return "application/octet-stream"
	}
}

func (m *modules) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		closeUnreadBody(w, r)
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	f, ok := m.files[strings.TrimPrefix(r.URL.Path, ModulesPrefix)]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such module: "+r.URL.Path)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}
