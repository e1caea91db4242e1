// Package localserver is the local host: it serves the PWA and the JSON API
// on loopback, keeps actions in the durable outbox, runs the sync engine,
// follows the upstream's event stream, and pushes live changes to pages and
// the tray over WebSocket.
package localserver

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"synctray/internal/failure"
	"synctray/localserver/clock"
	"synctray/localserver/datadir"
	"synctray/localserver/httpup"
	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
	"synctray/localserver/push"
	"synctray/localserver/readcache"
	"synctray/localserver/syncer"
	"synctray/upstream/protocol"
)

// DefaultAddr is where the host listens unless told otherwise.
const DefaultAddr = "127.0.0.1:7717"

// Config configures a Host. Zero values are the documented defaults.
type Config struct {
	// DataDir is required. It is created with mode 0700 (an existing one
	// is narrowed to 0700; one of another user's is refused), and locked:
	// a second host on it fails to open, naming the first.
	DataDir       string
	Addr          string // loopback address; "": DefaultAddr; port 0 picks one
	UpstreamURL   string // required
	UpstreamToken string
	WorkOffline   bool          // start with automatic sync paused
	Retention     time.Duration // how long synced and cancelled actions are kept; 0: 7 days
	// ResetOutbox starts with an empty outbox when the one in DataDir is
	// missing, empty or damaged, after moving its files aside
	// (outbox.db.bak-TIME); a healthy outbox is kept. false: such an
	// outbox is refused.
	ResetOutbox bool
	// Clock is the host's one clock: the engine, the outbox, pruning, the
	// status loop, push coalescing, login links and sessions take their
	// time from it; nil: Sync.Clock, else the wall clock. (Socket
	// deadlines stay on the wall clock.)
	Clock clock.Clock
	// Sync tunes the engine (batch size, backoff); its Clock, OnStatus,
	// OnReport, Upstream, Logger and WorkOffline fields are set by the host.
	Sync   syncer.Options
	Logger *slog.Logger // nil: slog.Default()
	// Assets is the PWA to serve; nil: the embedded assets.
	Assets fs.FS
	// AppDir, when set, is a directory whose web app the host serves at /
	// instead of Assets: read from disk at each request, with index.html
	// as the navigation fallback. It must not shadow ReservedPaths.
	AppDir string
	// Push tunes Web Push (coalescing window, HTTP client for tests).
	Push push.Options
	// UpstreamProtocol is how the upstream is spoken to: ProtocolSynctray
	// (protocol v1, the default) or ProtocolHTTP (any HTTP backend: pages
	// write to /upstream/<path> and the host replays each write to
	// UpstreamURL/<path>).
	UpstreamProtocol string
	// UpstreamHeaders are added to every request to an HTTP upstream
	// (credentials from --upstream-header-file); pages never see them.
	UpstreamHeaders http.Header
	// ForwardHeaders are request headers kept with a write besides
	// httpup.StoredHeaders (--forward-header).
	ForwardHeaders []string
	// OutboxMaxPages caps outbox.db at that many 4 KiB pages, as a disk
	// quota would (writes past it answer 507); 0: no cap.
	OutboxMaxPages int
	// OnShow, when set, shows the tray app's window; a second synctray
	// start calls it through POST /api/ui/show. It reports whether it did.
	OnShow func() bool
	// BodyTimeout bounds reading one request body; 0: 30 s.
	BodyTimeout time.Duration
	// HubBuffer is how many live events each subscriber of the hub (a
	// page's /ws, the tray) may fall behind by before it is dropped and
	// told to resync; 0: 256.
	HubBuffer int
}

// Host is a running local host. Open it, Run it, and it closes itself
// when Run returns.
type Host struct {
	cfg    Config
	log    *slog.Logger
	db     *outboxdb.DB
	engine *syncer.Engine
	hub    *Hub
	guard  *guard
	ln     net.Listener
	srv    *http.Server
	client *protocol.Client
	inbox  *inbox
	push   *push.Store
	sender *push.Sender
	lock   *datadir.Lock

	mu           sync.Mutex
	own          map[string]struct{} // keys this host synced recently: not news to push
	ownOrder     []string
	offlineSince bool // went offline (or worked offline) since the last sync report

	waits       waiters          // writes waiting for their upstream answer (HTTP mode)
	cache       *readcache.Cache // answers to reads through /upstream/ (HTTP mode)
	metrics     *metrics
	statusDirty chan struct{}
	closeOnce   sync.Once
	quitOnce    sync.Once
	quit        chan struct{} // closed by Quit
	closeErr    error
}

// Open prepares and locks the data dir, opens the outbox and listens; it
// fails early, with a clear message, when the data dir is in use, the port
// is taken, or the outbox is missing, empty or damaged in a data dir that
// had one.
func Open(cfg Config) (*Host, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("open host: no data dir")
	}
	if cfg.UpstreamURL == "" {
		return nil, errors.New("open host: no upstream URL")
	}
	if err := ValidateUpstreamURL(cfg.UpstreamURL); err != nil {
		return nil, err
	}
	if err := cfg.Sync.Validate(); err != nil {
		return nil, fmt.Errorf("open host: %w", err)
	}
	switch cfg.UpstreamProtocol {
	case "":
		cfg.UpstreamProtocol = ProtocolSynctray
	case ProtocolSynctray, ProtocolHTTP:
	default:
		return nil, fmt.Errorf("open host: upstream protocol %q: want %q or %q", cfg.UpstreamProtocol, ProtocolSynctray, ProtocolHTTP)
	}
	if err := httpup.CheckForward(cfg.ForwardHeaders); err != nil {
		return nil, fmt.Errorf("open host: %w", err)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AppDir != "" {
		if cfg.Assets != nil {
			return nil, errors.New("open host: both Assets and AppDir are set")
		}
		dir, err := checkAppDir(cfg.AppDir, cfg.Logger)
		if err != nil {
			return nil, err
		}
		cfg.AppDir = dir
	}
	if cfg.Clock == nil {
		cfg.Clock = cfg.Sync.Clock
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	cfg.Sync.Clock = cfg.Clock
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = defaultBodyTimeout
	}
	// Undo what was opened so far when a later step fails.
	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	if err := datadir.Prepare(cfg.DataDir); err != nil {
		return nil, err
	}
	lock, err := datadir.Acquire(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { lock.Release() })
	// The secrets are checked (and refused when others can read them) by
	// LoadOrCreateSecret itself.
	if fixed, err := datadir.RestrictFiles(cfg.DataDir, "api-token", "session-key"); err != nil {
		return nil, err
	} else if len(fixed) > 0 {
		cfg.Logger.Info("data dir files made private (0600)", "files", fixed)
	}
	token, err := LoadOrCreateSecret(filepath.Join(cfg.DataDir, "api-token"))
	if err != nil {
		return nil, fmt.Errorf("api token: %w", err)
	}
	sessionKey, err := LoadOrCreateSecret(filepath.Join(cfg.DataDir, "session-key"))
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	ln, err := Listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { ln.Close() })
	if err := lock.Record("http://" + ln.Addr().String()); err != nil {
		return nil, err
	}

	site, err := newSite(cfg)
	if err != nil {
		return nil, err
	}
	mods, err := newModules()
	if err != nil {
		return nil, err
	}
	vapid, err := push.LoadOrCreateKeys(filepath.Join(cfg.DataDir, "vapid.json"))
	if err != nil {
		return nil, err
	}
	pushStore, err := push.OpenStore(filepath.Join(cfg.DataDir, "push.db"))
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { pushStore.Close() })

	limiter := newConnLimiter(ln, maxUntrustedConns, untrustedGrace, cfg.Logger.With("component", "http"))
	h := &Host{cfg: cfg, quit: make(chan struct{}), log: cfg.Logger, hub: NewHub(0, cfg.HubBuffer), guard: newGuard(token, []byte(sessionKey)), ln: limiter,
		inbox: &inbox{max: 500}, push: pushStore, own: map[string]struct{}{},
		statusDirty: make(chan struct{}, 1), lock: lock}
	h.guard.setAddr(ln.Addr())
	h.guard.trust = limiter.trust
	h.guard.now = cfg.Clock.Now // login links and sessions expire on the host's clock
	po := cfg.Push
	if po.Clock == nil {
		po.Clock = cfg.Clock
	}
	if po.Logger == nil {
		po.Logger = h.log.With("component", "push")
	}
	h.sender = push.NewSender(pushStore, vapid, po)
	if h.metrics, err = newMetrics(hostGauges{h}, cfg.Clock.Now); err != nil {
		return nil, err
	}

	h.db, err = openOutbox(cfg, outboxdb.Options{
		Now:          cfg.Clock.Now,
		OnChange:     h.actionsChanged,
		MaxPageCount: cfg.OutboxMaxPages,
	})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { h.db.Close() })
	if n, err := h.db.RecoverSyncing(context.Background()); err != nil {
		return nil, fmt.Errorf("recover outbox: %w", err)
	} else if n > 0 {
		h.log.Info("actions interrupted mid-sync are queued again", "count", n)
	}

	h.client = &protocol.Client{BaseURL: strings.TrimRight(cfg.UpstreamURL, "/"), Token: cfg.UpstreamToken}
	so := cfg.Sync
	so.WorkOffline = cfg.WorkOffline
	so.Upstream = cfg.UpstreamURL
	so.StoreName = filepath.Join(cfg.DataDir, "outbox.db")
	so.Logger = h.log.With("component", "sync")
	so.OnStatus = h.statusChanged
	so.OnReport = h.synced
	so.OnAnswer = h.waits.done // a waiting page gets the upstream's answer before it is recorded
	so.Observe = h.metrics.observe
	// A refusal outlives a restart with the same configuration: the host
	// does not knock again with a token the upstream refused.
	blockedFile, config := filepath.Join(cfg.DataDir, "blocked.json"), upstreamFingerprint(cfg)
	so.Blocked = loadBlocked(blockedFile, config, h.log)
	so.OnBlocked = func(p *syncer.Problem) { saveBlocked(blockedFile, config, p, h.log) }
	var fw *httpup.Forwarder
	if cfg.UpstreamProtocol == ProtocolHTTP {
		base, _ := url.Parse(cfg.UpstreamURL) // checked by ValidateUpstreamURL
		hdr := cfg.UpstreamHeaders.Clone()
		if cfg.UpstreamToken != "" && hdr.Get("Authorization") == "" {
			if hdr == nil {
				hdr = http.Header{}
			}
			hdr.Set("Authorization", "Bearer "+cfg.UpstreamToken)
		}
		fw = &httpup.Forwarder{Base: base, Headers: hdr}
		h.engine = syncer.NewHTTP(h.db, fw, so)
	} else {
		h.engine = syncer.New(h.db, h.client, so)
	}

	mux := http.NewServeMux()
	a := &api{store: describedStore{h.db}, engine: h.engine, log: h.log, guard: h.guard, base: h.URL,
		inbox: h.inbox, push: pushStore, pushKey: vapid.Public, onShow: cfg.OnShow, revoke: h.RevokeSessions, quit: h.Quit}
	a.routes(mux)
	mux.Handle("GET /api/actions/export", &exportHandler{db: h.db, api: a})
	if fw != nil {
		// Reads pass through to the upstream; their last good answers are
		// kept in cache.db and served while it is unreachable.
		h.cache, err = readcache.Open(filepath.Join(cfg.DataDir, "cache.db"), readcache.Options{Logger: h.log.With("component", "readcache")})
		if err != nil {
			return nil, fmt.Errorf("open read cache: %w", err)
		}
		undo = append(undo, func() { h.cache.Close() })
		reads := readcache.Handler(readcache.HandlerOptions{Upstream: fw.Base, Headers: fw.Headers, Forward: cfg.ForwardHeaders,
			Cache: h.cache, Logger: h.log.With("component", "readcache")})
		mux.Handle(httpup.Prefix+"/", &upstreamHandler{a: a, forward: cfg.ForwardHeaders, waits: &h.waits, reads: reads})
	} else {
		mux.HandleFunc(httpup.Prefix+"/", notHTTPMode)
	}
	mux.Handle("GET /ws", newWSHandler(h.hub, h.guard, wsOptions{}, h.log))
	mux.Handle("GET /metrics", h.metrics.handler(h.log.With("component", "metrics")))
	// /healthz needs no token. It names the data dir so that a CLI run with
	// another --data-dir (whose token does not match) can say which one
	// this host uses. The path is no secret on this machine: ps shows the
	// --data-dir of every process and /etc/passwd every home directory;
	// web pages cannot read the answer (no CORS, and the Host check stops
	// DNS rebinding).
	healthDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		healthDir = cfg.DataDir
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "app": "synctray", "data_dir": healthDir})
	})
	mux.HandleFunc("GET /login", h.login)
	mux.Handle(ModulesPrefix, mods)
	mux.Handle("/", keepReserved(site))
	// No ReadTimeout: it would stay armed after the body is read and then
	// cancel the context of a long request (POST /api/sync). Bodies get
	// their own deadline (bodyDeadline), headers ReadHeaderTimeout, idle
	// keep-alive connections IdleTimeout; the guard answers before any
	// body is read, and the limiter caps anonymous connections.
	h.srv = &http.Server{
		Handler:           securityHeaders(contentSecurityPolicy(ln.Addr()), bodyDeadline(cfg.BodyTimeout, h.guard.wrap(mux))),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnState:         limiter.connState,
		ConnContext:       withConn,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
	// Shutdown does not wait for hijacked connections: end the WebSockets
	// so pages and the tray notice at once.
	h.srv.RegisterOnShutdown(h.hub.Close)
	undo = nil
	return h, nil
}

// ValidateUpstreamURL checks that s can be the base URL of an upstream: an
// absolute http or https URL with a host and perhaps a path prefix (the
// protocol's paths are appended to it), without a query, a fragment or
// credentials.
func ValidateUpstreamURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Scheme == "" || u.Hostname() == "" {
		return fmt.Errorf("upstream URL %q is not an absolute URL: want http://HOST:PORT or https://HOST[/PATH], e.g. http://127.0.0.1:7718", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("upstream URL %q: scheme %q is not supported: want http or https", s, u.Scheme)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("upstream URL %q: a query or fragment is not allowed (the protocol's paths are added to the URL)", s)
	}
	if u.User != nil {
		return fmt.Errorf("upstream URL %q: credentials in the URL are not allowed: give a token with --upstream-token-file", u.Redacted())
	}
	return nil
}

// Listen listens on a loopback TCP address and refuses any other.
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("address %q: synctray listens on loopback only (127.0.0.1)", addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
		addr = net.JoinHostPort(host, port)
	}
	ln, err := net.Listen("tcp", addr)
	if isAddrInUse(err) {
		return nil, portTaken(addr, host, port)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// portTaken says who holds addr: a synctray host, when its /healthz
// answers as one (with the data dir it uses), or another program.
func portTaken(addr, host, port string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	if resp, err := hc.Get("http://" + addr + "/healthz"); err == nil {
		var health struct {
			App     string `json:"app"`
			DataDir string `json:"data_dir"`
		}
		err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&health)
		resp.Body.Close()
		if err == nil && health.App == "synctray" {
			msg := fmt.Sprintf("port %s on %s is taken by synctray, already running there", port, host)
			if health.DataDir != "" {
				msg += " with the data dir " + health.DataDir
			}
			return errors.New(msg + ": use it (synctray open), stop it, or pick another port with --addr")
		}
	}
	return fmt.Errorf("port %s on %s is taken by another program (it does not answer as synctray): pick another port with --addr", port, host)
}

// URL is the host's base URL, e.g. http://127.0.0.1:7717.
func (h *Host) URL() string { return "http://" + h.ln.Addr().String() }

// Token is the per-install API token.
func (h *Host) Token() string { return h.guard.token }

// LoginURL returns a one-time login link for a browser.
func (h *Host) LoginURL() string { return h.URL() + "/login?token=" + h.guard.newLoginLink() }

// Clock is the host's one clock (for the tray).
func (h *Host) Clock() clock.Clock { return h.cfg.Clock }

// Hub is the live event hub (for the tray).
func (h *Host) Hub() *Hub { return h.hub }

// Engine is the sync engine (for the tray).
func (h *Host) Engine() *syncer.Engine { return h.engine }

// Outbox is the outbox (for the tray).
func (h *Host) Outbox() *outboxdb.DB { return h.db }

// Status returns the engine's status and the outbox counts.
func (h *Host) Status(ctx context.Context) (Status, error) { return hostStatus(ctx, h.db, h.engine) }

// Run serves until ctx is cancelled, then shuts down: it stops taking
// requests, lets those in flight finish, stops the engine after the batch
// in flight is recorded, and closes the outbox.
func (h *Host) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := h.srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
			cancel()
		}
	})
	wg.Go(func() { h.engine.Run(ctx) })
	wg.Go(func() { h.statusLoop(ctx) })
	followDone := make(chan struct{})
	if h.cfg.UpstreamProtocol == ProtocolSynctray {
		wg.Go(func() { defer close(followDone); h.follow(ctx) }) // inbound events are a protocol v1 feature
	} else {
		close(followDone)
	}
	wg.Go(func() { h.pruneLoop(ctx) })
	wg.Go(func() { h.sender.Run(ctx) })
	go func() {
		select {
		case <-h.quit:
			h.log.Info("quit requested")
			cancel()
		case <-ctx.Done():
		}
	}()
	h.log.Info("synctray host listening", "url", h.URL(), "upstream", h.cfg.UpstreamURL, "data_dir", h.cfg.DataDir)

	<-ctx.Done()
	// The follower stops first: Shutdown closes the hub, and an event
	// delivered after that would have its cursor saved without having
	// reached pages and push (a restart would not announce it again).
	<-followDone
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelShut()
	err := h.srv.Shutdown(shutCtx)
	wg.Wait()
	select {
	case e := <-serveErr:
		err = errors.Join(fmt.Errorf("serve: %w", e), err)
	default:
	}
	return errors.Join(err, h.Close())
}

// Quit makes Run shut down as if its context was cancelled: the way to
// stop a host that no signal reaches (a Windows GUI-subsystem build has no
// console for Ctrl+C). POST /api/quit and `synctray quit` call it.
func (h *Host) Quit() { h.quitOnce.Do(func() { close(h.quit) }) }

// Close closes the outbox and the listener and releases the data dir;
// Run calls it. It is safe to call twice.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.ln.Close()
		var cacheErr error
		if h.cache != nil {
			cacheErr = h.cache.Close()
		}
		h.closeErr = errors.Join(h.db.Close(), h.push.Close(), cacheErr, h.lock.Release())
		h.log.Info("synctray host stopped")
	})
	return h.closeErr
}

func (h *Host) login(w http.ResponseWriter, r *http.Request) {
	if !h.guard.useLoginLink(r.URL.Query().Get("token")) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintln(w, "This login link has expired or was already used. Run `synctray open` for a new one.")
		return
	}
	http.SetCookie(w, h.guard.sessionCookie())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// actionsChanged runs after each outbox commit.
func (h *Host) actionsChanged(acts []outbox.Action) {
	h.metrics.actionsChanged(acts)
	for i := range acts {
		a := acts[i]
		describe(&a)
		h.waits.done(a)
		h.hub.Publish(Event{Kind: "action", Action: &a})
		switch a.State {
		case outbox.Syncing, outbox.Synced: // remembered before it is sent: its echo can beat our own record
			h.remember(a.Key)
		case outbox.Failed:
			ev, _ := json.Marshal(Event{Kind: "action", Action: &a})
			h.sender.Notify(push.Notification{Kind: "rejected", Title: "Upstream rejected an action",
				Body: a.LastError, Tag: "rejected", URL: "/", Event: ev, Count: 1})
		}
	}
	h.markStatusDirty()
}

// remember notes a key this host synced, so its echo from the upstream's
// event stream is not pushed as news; it keeps the last 10,000.
func (h *Host) remember(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.own[key]; ok {
		return
	}
	h.own[key] = struct{}{}
	h.ownOrder = append(h.ownOrder, key)
	if len(h.ownOrder) > 10000 {
		delete(h.own, h.ownOrder[0])
		h.ownOrder = h.ownOrder[1:]
	}
}

func (h *Host) isOwn(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.own[key]
	return ok
}

func (h *Host) statusChanged(st syncer.Status) {
	if !st.Online || st.WorkOffline {
		h.mu.Lock()
		h.offlineSince = true
		h.mu.Unlock()
	}
	h.markStatusDirty()
}

// SyncReport is the "report" event: a drain finished.
type SyncReport struct {
	Synced       int    `json:"synced"`
	Rejected     int    `json:"rejected"`
	Error        string `json:"error,omitempty"`
	AfterOffline bool   `json:"after_offline"` // the first sync since the host was offline
}

// synced runs after each drain: it tells pages and the tray, and pushes
// "N actions synced" when the backlog went out after being offline.
func (h *Host) synced(rep syncer.Report) {
	r := SyncReport{Synced: rep.Synced, Rejected: rep.Rejected}
	if rep.Err != nil {
		r.Error = cmp.Or(rep.Error, failure.Summary(rep.Err)) // one line, as the status says it
	}
	h.mu.Lock()
	if rep.Err == nil && rep.Synced > 0 && h.offlineSince {
		r.AfterOffline, h.offlineSince = true, false
	}
	h.mu.Unlock()
	h.hub.Publish(Event{Kind: "report", Report: &r})
	if r.AfterOffline {
		h.sender.Notify(push.Notification{Kind: "synced", Title: "Back online",
			Body: fmt.Sprintf("%d actions synced", r.Synced), Tag: "synced", URL: "/", Count: r.Synced})
	}
}

func (h *Host) markStatusDirty() {
	select {
	case h.statusDirty <- struct{}{}:
	default:
	}
}

// statusLoop publishes the status when it changed, at most every 200 ms,
// so a burst of changes costs one count query.
func (h *Host) statusLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.statusDirty:
		}
		st, err := h.Status(ctx)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Error("status", "err", err)
			}
		} else {
			h.hub.Publish(Event{Kind: "status", Status: &st})
		}
		select {
		case <-ctx.Done():
			return
		case <-h.after(200 * time.Millisecond):
		}
	}
}

// cursorSaveEvery is the most time between an event announced and the
// events cursor on disk: a crash re-announces at most that much.
const cursorSaveEvery = 200 * time.Millisecond

// follow streams the upstream's events to pages as "message" events,
// remembering the cursor across restarts.
func (h *Host) follow(ctx context.Context) {
	path := filepath.Join(h.cfg.DataDir, cursorFile)
	var cursor int64
	if b, err := os.ReadFile(path); err == nil {
		cursor, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	// Seed the inbox with the last few hundred events without announcing
	// them again: only those after the saved cursor are news.
	seen := cursor
	from := max(0, cursor-int64(h.inbox.max))
	var latest atomic.Int64
	latest.Store(cursor)
	dirty, done := make(chan struct{}, 1), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { h.saveCursor(path, cursor, &latest, dirty, done) })
	err := h.client.Follow(ctx, from, 2*time.Second, func(ev protocol.Event) {
		m := Message{Cursor: ev.Cursor, Key: ev.Key, Type: ev.Type, Payload: ev.Payload, AppliedAt: ev.AppliedAt, Own: h.isOwn(ev.Key)}
		h.inbox.add(m)
		if ev.Cursor <= seen {
			return
		}
		h.hub.Publish(Event{Kind: "message", Message: &m})
		if !m.Own {
			evJSON, _ := json.Marshal(Event{Kind: "message", Message: &m})
			h.sender.Notify(push.Notification{Kind: "message", Title: "New message", Body: m.Text(),
				Tag: "message", URL: "/", Event: evJSON, Count: 1})
		}
		latest.Store(ev.Cursor)
		select {
		case dirty <- struct{}{}:
		default:
		}
	})
	close(done)
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		h.log.Error("follow upstream events", "err", err)
	}
}

// saveCursor writes the latest announced cursor to path (atomically) when
// it moves: at once after a quiet spell, then at most every
// cursorSaveEvery, and a last time when done closes.
func (h *Host) saveCursor(path string, saved int64, latest *atomic.Int64, dirty, done <-chan struct{}) {
	save := func() {
		c := latest.Load()
		if c == saved {
			return
		}
		if err := datadir.WriteFileAtomic(path, []byte(strconv.FormatInt(c, 10)+"\n")); err != nil {
			h.log.Warn("save event cursor", "err", err)
			return
		}
		saved = c
	}
	for {
		select {
		case <-done:
			save()
			return
		case <-dirty:
		}
		save()
		select {
		case <-done:
			save()
			return
		case <-time.After(cursorSaveEvery):
		}
	}
}

// pruneLoop deletes synced and cancelled actions older than the
// retention, at start and every hour.
func (h *Host) pruneLoop(ctx context.Context) {
	for {
		n, err := h.db.Prune(ctx, h.cfg.Clock.Now().Add(-h.cfg.Retention))
		if err != nil && ctx.Err() == nil {
			h.log.Error("prune outbox", "err", err)
		} else if n > 0 {
			h.log.Info("pruned old actions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-h.after(PruneEvery):
		}
	}
}

// PruneEvery is how often old synced and cancelled actions are deleted.
const PruneEvery = time.Hour

// after is time.After on the host's clock. The timer is not stopped: it
// fires once and is dropped (the fake clock keeps no goroutine).
func (h *Host) after(d time.Duration) <-chan time.Time { return h.cfg.Clock.NewTimer(d).C() }

// contentSecurityPolicy is the policy of every answer: the app's own
// files only, no inline script, and connections to this host and its
// WebSocket only.
func contentSecurityPolicy(addr net.Addr) string {
	_, port, _ := net.SplitHostPort(addr.String())
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"connect-src 'self' ws://127.0.0.1:" + port + " ws://localhost:" + port,
		"object-src 'none'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
		"form-action 'self'",
	}, "; ")
}

func securityHeaders(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// blockedState is <data-dir>/blocked.json: the upstream's refusal
// (unauthorized, protocol) and the configuration it was given to.
type blockedState struct {
	Config  string         `json:"config"` // upstreamFingerprint
	Problem syncer.Problem `json:"problem"`
}

// upstreamFingerprint names the configuration a refusal was given to:
// the upstream, how it is spoken to, and the credentials sent (hashed).
// Changing any of them leaves the blocked state at the next start.
func upstreamFingerprint(cfg Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", cfg.UpstreamURL, cfg.UpstreamProtocol, cfg.UpstreamToken)
	keys := make([]string, 0, len(cfg.UpstreamHeaders))
	for k := range cfg.UpstreamHeaders {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s: %s\n", k, strings.Join(cfg.UpstreamHeaders[k], ", "))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadBlocked returns the refusal kept for this configuration, or nil.
func loadBlocked(path, config string, log *slog.Logger) *syncer.Problem {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var st blockedState
	if err := json.Unmarshal(b, &st); err != nil || st.Problem.Code == "" {
		log.Warn("ignoring an unreadable blocked state", "file", path, "err", err)
		return nil
	}
	if st.Config != config {
		log.Info("the upstream configuration changed since it refused us: trying again", "was", st.Problem.Code)
		os.Remove(path)
		return nil
	}
	log.Warn("sync stays blocked as before the restart, until Sync now or a new configuration", "code", st.Problem.Code, "err", st.Problem.Message)
	return &st.Problem
}

// saveBlocked keeps p for the next start, or removes it (p nil).
func saveBlocked(path, config string, p *syncer.Problem, log *slog.Logger) {
	if p == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Error("remove the blocked state", "err", err)
		}
		return
	}
	b, _ := json.Marshal(blockedState{Config: config, Problem: *p})
	if err := datadir.WriteFileAtomic(path, b); err != nil {
		log.Error("keep the blocked state", "err", err)
	}
}
