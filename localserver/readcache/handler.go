package readcache

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"synctray/internal/failure"
)

// HeaderCache is the header that says where an answer came from: one of
// CacheMiss, CacheStored or CacheOffline.
const HeaderCache = "Synctray-Cache"

// Values of HeaderCache.
const (
	// CacheMiss: the upstream's answer, not stored (not a 200, too large,
	// no-store, Vary: *, HEAD, or a 304).
	CacheMiss = "miss"
	// CacheStored: the upstream's answer, stored for when it is offline.
	CacheStored = "stored"
	// CacheOffline: the upstream could not be reached; this is the last
	// answer stored, and Age says how old it is in seconds.
	CacheOffline = "offline"
)

// DefaultDownFor is the default of HandlerOptions.DownFor.
const DefaultDownFor = time.Second

// DefaultPrefix is the host path the handler serves by default.
const DefaultPrefix = "/upstream"

// Error codes of the handler's own JSON answers {"error":{"code","message"}}.
const (
	CodeOfflineNotCached = "offline_not_cached" // 504: upstream unreachable, nothing stored
	CodeMethodNotAllowed = "method_not_allowed" // 405: not GET or HEAD
	CodeBadPath          = "bad_path"           // 400: a dot segment, which would leave the upstream's prefix
	CodeNotFound         = "not_found"          // 404: not under Prefix
	CodeNoUpstream       = "no_upstream"        // 502: HandlerOptions.Upstream is nil
	CodeInternal         = "internal"           // 500: the cache failed
)

// defaultForward are the page's request headers sent upstream.
var defaultForward = []string{"Accept", "Accept-Language", "If-None-Match", "If-Modified-Since"}

// neverForward are request headers HandlerOptions.Forward cannot name:
// the page's credentials and the connection's own headers.
var neverForward = []string{
	"Authorization", "Cookie", "Proxy-Authorization", "Host", "Connection", "Keep-Alive",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
}

// passHeaders are the upstream's answer headers the page gets (and that
// are stored with an entry). Content-Length is set by the handler;
// Set-Cookie and everything else stays with the host.
var passHeaders = []string{
	"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Type",
	"Etag", "Expires", "Last-Modified", "Location", "Retry-After", "Vary",
}

// HandlerOptions configure Handler. Zero values are the documented defaults.
type HandlerOptions struct {
	// Upstream is the backend's base URL; its own path prefix is kept
	// (https://api.example.com/v1 + /upstream/todos →
	// https://api.example.com/v1/todos). nil: every read answers 502.
	Upstream *url.URL
	// Prefix is the host path served: Prefix/<path>?<query> goes to
	// Upstream/<path>?<query>. "": DefaultPrefix ("/upstream").
	Prefix string
	// Client sends the upstream requests; redirects are never followed
	// (a copy of the client is made with its own CheckRedirect). nil: a
	// client whose transport waits at most 15 s for an answer's headers.
	Client *http.Client
	// Headers are added to every upstream request, replacing the page's
	// of the same name: the host-held credentials (--upstream-header-file).
	// They never reach the page and are not stored in the clear.
	Headers http.Header
	// Forward names the page's request headers sent upstream besides
	// Accept, Accept-Language, If-None-Match and If-Modified-Since.
	// Authorization, Cookie and hop-by-hop headers are never forwarded,
	// even when named.
	Forward []string
	// Cache stores answers and serves them when the upstream is
	// unreachable. nil: pass-through only.
	Cache *Cache
	// DownFor is how long, after a read could not reach the upstream (a
	// network error or a timeout, not an answer), reads are served from
	// the cache without trying it, so that a dead or silent upstream is
	// not dialled, or waited for, by every read. An upstream that comes
	// back is seen at most this late. 0: DefaultDownFor (1 s); negative:
	// every read tries the upstream.
	DownFor time.Duration
	// Logger gets a line for answers served offline (debug) and for cache
	// failures (warn). nil: slog.Default().
	Logger *slog.Logger
}

type handler struct {
	base     *url.URL
	prefix   string
	client   *http.Client
	headers  http.Header
	forward  []string
	cache    *Cache
	log      *slog.Logger
	now      func() time.Time
	maxEntry int64

	downFor    time.Duration
	downUntil  atomic.Int64 // UnixNano by now(); 0: not known down
	downReason atomic.Pointer[string]
}

// Handler answers GET and HEAD to Prefix/<path>?<query> from the upstream
// at Upstream/<path>?<query> (path escapes and the query kept byte for
// byte), without the page's Cookie and Authorization and with Headers
// added. The page gets the upstream's status, body and the headers that
// matter (Content-Type, Content-Length, ETag, Last-Modified,
// Cache-Control, Vary, Location — rewritten under Prefix when it points
// into the upstream —, Retry-After, and a few content headers), never its
// Set-Cookie, and Synctray-Cache: miss or stored. Answers 200 to GET are
// stored in Cache (see the package doc for which); a 404 or 410 drops
// what was stored for the URL.
//
// When the upstream is unreachable (a network error, a timeout, or an
// answer 502, 503 or 504), the last stored answer for the URL and the
// Vary'd request headers is served: 200, its stored headers, Age and
// Synctray-Cache: offline. With nothing stored the page gets 504 and
// {"error":{"code":"offline_not_cached","message":...}}. After a read
// could not reach the upstream at all, reads for DownFor are answered so
// without trying it.
//
// Other methods get 405: writes are the outbox's, handled before this.
func Handler(o HandlerOptions) http.Handler {
	h := &handler{prefix: strings.TrimSuffix(o.Prefix, "/"), cache: o.Cache, log: o.Logger, now: time.Now, maxEntry: DefaultMaxEntry}
	if o.Prefix == "" {
		h.prefix = DefaultPrefix
	}
	switch h.downFor = o.DownFor; {
	case o.DownFor == 0:
		h.downFor = DefaultDownFor
	case o.DownFor < 0:
		h.downFor = 0
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if o.Cache != nil {
		h.now, h.maxEntry = o.Cache.now, o.Cache.maxEntry
	}
	if o.Upstream != nil {
		b := *o.Upstream
		b.RawQuery, b.Fragment, b.RawFragment, b.ForceQuery = "", "", "", false
		h.base = &b
	}
	if o.Client != nil {
		c := *o.Client
		h.client = &c
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 15 * time.Second
		t.MaxIdleConnsPerHost = 16
		h.client = &http.Client{Transport: t}
	}
	h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	h.headers = make(http.Header, len(o.Headers))
	for name, v := range o.Headers {
		h.headers[http.CanonicalHeaderKey(name)] = slices.Clone(v)
	}
	for _, name := range append(slices.Clone(defaultForward), o.Forward...) {
		name = http.CanonicalHeaderKey(strings.TrimSpace(name))
		switch {
		case name == "" || slices.Contains(h.forward, name):
		case slices.Contains(neverForward, name):
			h.log.Warn("read cache: a forwarded header that is never forwarded", "header", name)
		default:
			h.forward = append(h.forward, name)
		}
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			fmt.Sprintf("%s to %s is not a read; writes go through the outbox", r.Method, h.prefix))
		return
	}
	if h.base == nil {
		writeError(w, http.StatusBadGateway, CodeNoUpstream, "no HTTP upstream is configured")
		return
	}
	target, status, code, msg := h.target(r.URL)
	if status != 0 {
		writeError(w, status, code, msg)
		return
	}
	// The key is the URL without user info, so that credentials in the
	// configured URL are not written to the cache file.
	k := *target
	k.User = nil
	key := k.String()
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadPath, failure.Line("the path cannot be sent upstream: "+err.Error()))
		return
	}
	req.Header = h.outHeader(r.Header)
	if until := h.downUntil.Load(); until != 0 && h.now().UnixNano() < until {
		h.offline(w, r, key, req.Header, *h.downReason.Load(), "")
		return
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if r.Context().Err() != nil {
			return // the page went away
		}
		reason := failure.Summary(err)
		if h.downFor > 0 {
			h.downReason.Store(&reason)
			h.downUntil.Store(h.now().Add(h.downFor).UnixNano())
		}
		h.offline(w, r, key, req.Header, reason, "")
		return
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		io.CopyN(io.Discard, resp.Body, 4<<10) // let the connection be reused
		h.offline(w, r, key, req.Header, "upstream answered "+strconv.Itoa(resp.StatusCode)+" "+http.StatusText(resp.StatusCode),
			resp.Header.Get("Retry-After"))
		return
	}
	h.pass(w, r, key, req, resp)
}

// target maps the page's URL to the upstream's; a non-zero status is the
// refusal.
func (h *handler) target(u *url.URL) (t *url.URL, status int, code, msg string) {
	esc := u.EscapedPath()
	rest, ok := strings.CutPrefix(esc, h.prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return nil, http.StatusNotFound, CodeNotFound, "not under " + h.prefix
	}
	restPath, _ := strings.CutPrefix(u.Path, h.prefix)
	for _, seg := range strings.Split(restPath, "/") {
		if seg == "." || seg == ".." {
			return nil, http.StatusBadRequest, CodeBadPath, "a path with . or .. segments is not sent upstream"
		}
	}
	t = new(url.URL)
	*t = *h.base
	if rest != "" {
		t.Path = strings.TrimSuffix(h.base.Path, "/") + restPath
		t.RawPath = strings.TrimSuffix(h.base.EscapedPath(), "/") + rest
	}
	t.RawQuery, t.ForceQuery = u.RawQuery, u.ForceQuery
	return t, 0, "", ""
}

// outHeader is the upstream request's header: the forwarded headers of
// the page, then the host's.
func (h *handler) outHeader(in http.Header) http.Header {
	out := make(http.Header, len(h.forward)+len(h.headers))
	for _, name := range h.forward {
		if v := in.Values(name); len(v) > 0 {
			out[name] = slices.Clone(v)
		}
	}
	for name, v := range h.headers {
		out[name] = slices.Clone(v)
	}
	return out
}

// pass gives the page the upstream's answer, storing it when it may.
func (h *handler) pass(w http.ResponseWriter, r *http.Request, key string, req *http.Request, resp *http.Response) {
	hdr := make(http.Header, len(passHeaders))
	for _, name := range passHeaders {
		if v := resp.Header.Values(name); len(v) > 0 {
			hdr[name] = slices.Clone(v)
		}
	}
	if loc := hdr.Get("Location"); loc != "" {
		hdr.Set("Location", h.rewriteLocation(loc))
	}
	get := r.Method == http.MethodGet
	if get && h.cache != nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone) {
		if err := h.cache.forget(r.Context(), key); err != nil {
			h.log.Warn("read cache: drop a gone resource", "url", key, "err", err)
		}
	}
	names, star := varyNames(resp.Header.Values("Vary"))
	storable := get && h.cache != nil && resp.StatusCode == http.StatusOK && !star &&
		!hasDirective(resp.Header.Values("Cache-Control"), "no-store") &&
		resp.ContentLength <= h.maxEntry
	out := w.Header()
	if !storable {
		length := resp.ContentLength
		if resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusNoContent {
			length = -1
		}
		writeHead(out, hdr, length, CacheMiss)
		w.WriteHeader(resp.StatusCode)
		if get {
			h.stream(w, resp.Body, key)
		}
		return
	}
	// Read at most MaxEntry+1 bytes: an answer that fits is stored before
	// the page gets it; a larger one goes on streaming, not stored.
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.maxEntry+1))
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		h.offline(w, r, key, req.Header, failure.Summary(err), "")
		return
	}
	if int64(len(body)) > h.maxEntry {
		writeHead(out, hdr, resp.ContentLength, CacheMiss)
		w.WriteHeader(resp.StatusCode)
		if _, err := w.Write(body); err != nil {
			return
		}
		h.stream(w, resp.Body, key)
		return
	}
	mark := CacheMiss
	e := &entry{url: key, vary: names, variant: variantOf(names, req.Header), header: hdr, body: body, storedAt: h.now()}
	if ok, err := h.cache.store(r.Context(), e); err != nil {
		h.log.Warn("read cache: store an answer", "url", key, "err", err)
	} else if ok {
		mark = CacheStored
	}
	writeHead(out, hdr, int64(len(body)), mark)
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// stream copies the rest of an upstream body to the page. If the upstream
// breaks off, the page's answer is aborted rather than ended, so that the
// page does not take a cut body for a whole one.
func (h *handler) stream(w http.ResponseWriter, body io.Reader, key string) {
	buf := make([]byte, 32<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return // the page went away
			}
		}
		if rerr == io.EOF {
			return
		}
		if rerr != nil {
			h.log.Warn("read cache: the upstream broke off an answer", "url", key, "err", rerr)
			// net/http's documented way to abort a response; the server
			// recovers it without a stack trace.
			panic(http.ErrAbortHandler)
		}
	}
}

// offline serves the stored answer for key, or 504 when there is none.
func (h *handler) offline(w http.ResponseWriter, r *http.Request, key string, sent http.Header, reason, retryAfter string) {
	if h.cache != nil {
		e, err := h.cache.lookup(r.Context(), key, sent)
		if err != nil {
			h.log.Warn("read cache: look up an answer", "url", key, "err", err)
			writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
			return
		}
		if e != nil {
			age := max(int64(h.now().Sub(e.storedAt)/time.Second), 0)
			h.log.Debug("read cache: upstream unreachable, served the stored answer", "url", key, "age_s", age, "reason", reason)
			out := w.Header()
			for name, v := range e.header {
				out[name] = slices.Clone(v)
			}
			writeHead(out, nil, int64(len(e.body)), CacheOffline)
			out.Set("Age", strconv.FormatInt(age, 10))
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				w.Write(e.body)
			}
			return
		}
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeError(w, http.StatusGatewayTimeout, CodeOfflineNotCached,
		fmt.Sprintf("%s, and no answer is stored for %s %s", reason, r.Method, r.URL.Path))
}

// writeHead sets the page's answer headers: hdr, Content-Length when
// known, the cache mark and the headers that keep an upstream's answer
// from acting as the host's own page.
func writeHead(out, hdr http.Header, length int64, mark string) {
	for name, v := range hdr {
		out[name] = v
	}
	if length >= 0 {
		out.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	out.Set(HeaderCache, mark)
	out.Set("X-Content-Type-Options", "nosniff")
	out.Set("Content-Security-Policy", "sandbox")
	out.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// rewriteLocation maps a Location into the upstream back under Prefix;
// other places are left as they are (a path outside the upstream's prefix
// is made absolute, so it does not point into the host).
func (h *handler) rewriteLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	if u.Host != "" && (!strings.EqualFold(u.Host, h.base.Host) || (u.Scheme != "" && !strings.EqualFold(u.Scheme, h.base.Scheme))) {
		return loc // another site
	}
	if u.Host == "" && !strings.HasPrefix(u.Path, "/") {
		return loc // relative: it resolves under Prefix already
	}
	p, bp := u.EscapedPath(), strings.TrimSuffix(h.base.EscapedPath(), "/")
	var rest string
	switch {
	case p == bp || p == bp+"/":
		rest = strings.TrimPrefix(p, bp)
	case strings.HasPrefix(p, bp+"/"):
		rest = p[len(bp):]
	default:
		abs := *u
		abs.Scheme, abs.Host = h.base.Scheme, h.base.Host
		return abs.String()
	}
	out := h.prefix + rest
	if u.RawQuery != "" || u.ForceQuery {
		out += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		out += "#" + u.EscapedFragment()
	}
	return out
}

// hasDirective reports whether Cache-Control values name directive.
func hasDirective(values []string, directive string) bool {
	for _, v := range values {
		for _, d := range strings.Split(v, ",") {
			d, _, _ = strings.Cut(d, "=")
			if strings.EqualFold(strings.TrimSpace(d), directive) {
				return true
			}
		}
	}
	return false
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers the host's JSON error shape, on one line.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, failure.Line(msg)
	out, _ := json.Marshal(b)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(out, '\n'))
}
