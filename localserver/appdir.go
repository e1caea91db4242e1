package localserver

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"synctray/assets"
)

// ReservedPath is one of the host's own paths.
type ReservedPath struct {
	Path string // "/api/": the subtree; "/ws": that path
	What string // what the host serves there, for messages
}

// Name is the top-level name the path takes from an app dir, e.g. "api".
func (p ReservedPath) Name() string { return strings.Trim(p.Path, "/") }

// ReservedPaths are the host's own paths. Open refuses an app dir
// (Config.AppDir) with a top-level file or directory of one of their
// names, and no request whose first path segment is one of their names
// reaches the app's files or its index.html fallback: the host answers it,
// or it is not found.
var ReservedPaths = []ReservedPath{
	{"/api/", "the JSON API"},
	{"/ws", "the live events WebSocket"},
	{"/healthz", "the health check"},
	{"/metrics", "the Prometheus metrics"},
	{"/login", "the one-time login links"},
	{"/synctray/", "the host's modules for apps"},
	{"/upstream/", "the HTTP upstream"},
}

// reservedPath reports the reserved path that urlPath falls under.
func reservedPath(urlPath string) (ReservedPath, bool) {
	first, _, _ := strings.Cut(strings.TrimPrefix(urlPath, "/"), "/")
	for _, p := range ReservedPaths {
		if first == p.Name() {
			return p, true
		}
	}
	return ReservedPath{}, false
}

// keepReserved answers 404 for a request under a reserved path that no
// route of the host took, so that the app's files never answer it.
func keepReserved(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := reservedPath(r.URL.Path); ok {
			closeUnreadBody(w, r)
			writeError(w, http.StatusNotFound, "not_found", r.Method+" "+r.URL.Path+" is not one of the host's routes ("+p.Path+" is "+p.What+")")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// newSite returns what the host serves at /: the app in cfg.AppDir, else
// the PWA in cfg.Assets (nil: the bundled one).
func newSite(cfg Config) (http.Handler, error) {
	if cfg.AppDir != "" {
		cfg.Logger.Info("serving the app dir", "dir", cfg.AppDir)
		return &appFiles{dir: cfg.AppDir, log: cfg.Logger.With("component", "app")}, nil
	}
	if cfg.Assets == nil {
		cfg.Assets = assets.FS
	}
	return newShell(cfg.Assets)
}

// checkAppDir checks that dir can be served as the app: a directory
// without a top-level entry named after a reserved path. It returns the
// directory's absolute path.
func checkAppDir(dir string, log *slog.Logger) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("app dir %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("app dir %s does not exist", dir)
	} else if err != nil {
		return "", fmt.Errorf("app dir: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("app dir %s is not a directory", dir)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return "", fmt.Errorf("read app dir: %w", err)
	}
	var clash []string
	for _, en := range entries {
		if p, ok := reservedPath("/" + en.Name()); ok {
			kind := "file"
			if en.IsDir() {
				kind = "directory"
			}
			clash = append(clash, fmt.Sprintf("its %s %q would shadow the host's own %s (%s)", kind, en.Name(), p.Path, p.What))
		}
	}
	if len(clash) > 0 {
		return "", fmt.Errorf("app dir %s: %s: rename or move it", dir, strings.Join(clash, "; "))
	}
	if fi, err := os.Stat(filepath.Join(abs, "index.html")); err != nil || !fi.Mode().IsRegular() {
		log.Warn("the app dir has no index.html: / and page navigations will answer 404", "dir", abs)
	}
	return abs, nil
}

// appFiles serves a developer's own web app from a directory. Each
// request reads the disk afresh (through an os.Root, so that no path or
// symbolic link leads outside the directory), nothing is cached in
// memory, and the directory may even be replaced while the host runs.
type appFiles struct {
	dir string // absolute
	log *slog.Logger
}

// errNotFile is a path that names no regular file the app can serve.
var errNotFile = errors.New("not a file")

func (a *appFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		closeUnreadBody(w, r)
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") {
			// Dotfiles (.env, .git/…) are never served, not even as a
			// navigation's fallback.
			writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path)
			return
		}
	}
	root, err := os.OpenRoot(a.dir)
	if err != nil {
		a.log.Error("open the app dir", "err", err)
		writeError(w, http.StatusServiceUnavailable, "app_dir_unreadable", "the app dir cannot be read (see the host's log)")
		return
	}
	defer root.Close()

	if name == "" {
		name = "index.html"
	} else if strings.HasSuffix(r.URL.Path, "/") {
		name = "" // a directory's path: never a file, perhaps a navigation
	}
	f, fi, err := openRegular(root, name)
	if err == nil {
		defer f.Close()
		a.serve(w, r, name, f, fi)
		return
	}
	if !errors.Is(err, errNotFile) {
		// A symbolic link out of the app dir, a device, a file we may
		// not read: not found, whatever the request.
		a.log.Warn("app file refused", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path)
		return
	}
	w.Header().Set("Vary", "Accept, Sec-Fetch-Mode")
	if !isNavigation(r) {
		writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path)
		return
	}
	// A page navigation to a path that is not a file gets the app's
	// index.html, so that the app routes it (a single-page app).
	f, fi, err = openRegular(root, "index.html")
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path+" (and the app dir has no index.html)")
		return
	}
	defer f.Close()
	a.serve(w, r, "index.html", f, fi)
}

// openRegular opens name in root if it is a regular file; a name that
// does not exist or is a directory gives errNotFile.
func openRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	if name == "" {
		return nil, nil, errNotFile
	}
	// Stat before Open: opening a FIFO would block.
	fi, err := root.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return nil, nil, errNotFile
	case err != nil:
		return nil, nil, err
	case fi.IsDir():
		return nil, nil, errNotFile
	case !fi.Mode().IsRegular():
		return nil, nil, fmt.Errorf("%s is not a regular file (%s)", name, fi.Mode().Type())
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s changed while it was opened", name)
	}
	return f, fi, nil
}

func (a *appFiles) serve(w http.ResponseWriter, r *http.Request, name string, f *os.File, fi fs.FileInfo) {
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	// The app's own service worker does the caching; browsers revalidate.
	h.Set("Cache-Control", "no-cache")
	// Last-Modified has whole seconds: two edits within one second would
	// answer 304 without this.
	h.Set("ETag", `"`+strconv.FormatInt(fi.Size(), 36)+"-"+strconv.FormatInt(fi.ModTime().UnixNano(), 36)+`"`)
	if name == "sw.js" || r.Header.Get("Service-Worker") == "script" {
		h.Set("Service-Worker-Allowed", "/")
	}
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// appTypes are the Content-Types of an app's files, fixed here rather
// than taken from the machine's MIME database, which differs between
// machines (and has served .js as text/plain).
var appTypes = map[string]string{
	".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
	".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".cjs": "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8", ".csv": "text/csv; charset=utf-8",
	".md": "text/markdown; charset=utf-8", ".xml": "application/xml",
	".json": "application/json", ".map": "application/json", ".webmanifest": "application/manifest+json",
	".wasm": "application/wasm", ".pdf": "application/pdf",
	".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".ico": "image/x-icon",
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".wav": "audio/wav", ".mp4": "video/mp4", ".webm": "video/webm",
}

// contentType is the Content-Type of an app file; one of an unknown kind
// is application/octet-stream (never sniffed: a file that looks like HTML
// must not become a page).
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := appTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// isNavigation reports whether r loads a page: Sec-Fetch-Mode: navigate,
// or an Accept that prefers text/html (an older browser, curl -H).
func isNavigation(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		return true
	}
	html, best := 0.0, 0.0
	for _, v := range r.Header.Values("Accept") {
		for rng := range strings.SplitSeq(v, ",") {
			typ, params, _ := strings.Cut(rng, ";")
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
						q = f
					} else {
						q = 0
					}
				}
			}
			if strings.EqualFold(strings.TrimSpace(typ), "text/html") {
				html = max(html, q)
			}
			best = max(best, q)
		}
	}
	return html > 0 && html >= best
}
