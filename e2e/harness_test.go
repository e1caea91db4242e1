package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/idemserver"
	"synctray/internal/testsupport/testupstream"
	"synctray/localserver"
	"synctray/upstream"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// wait is how long a test waits for any one condition.
const wait = 15 * time.Second

// options choose what newEnv sets up.
type options struct {
	query  string   // appended to the page URL, e.g. "?nosync=1"
	proxy  bool     // put a front proxy between the browser and the host
	grant  []string // permissions granted before the page loads
	width  int64    // viewport; 0: 1024×768
	height int64
	mobile bool
	appDir string // served instead of the bundled app (Config.AppDir)
	// assets is the app the host serves at / (nil: the bundled app).
	assets fs.FS
	// httpUpstream starts the host in HTTP mode (/upstream/ writes through
	// the outbox) against an idempotent test backend (env.idem) instead of
	// the reference upstream, with a short backoff so that a backend that
	// comes back is used again within a test's wait.
	httpUpstream bool
	// upstreamURL starts the host in HTTP mode against this backend (a
	// server of the test's own, e.g. json-server) instead of env.idem,
	// with the same short backoff.
	upstreamURL string
	// upstreamToken makes the reference upstream require this bearer
	// token, which the host does not have: the host is blocked
	// (unauthorized) from its first sync.
	upstreamToken string
}

// env is one test's world: a reference upstream, a host on a fixed port
// with its own data dir, and a browser with a fresh profile whose tab is
// logged in and showing the app.
type env struct {
	t       testing.TB // the running (sub)test; see in
	root    testing.TB // the test that owns the env
	opts    options
	addr    string // the host's 127.0.0.1:PORT, the same across restarts
	dataDir string
	assets  fs.FS // nil: the embedded assets

	host   *localserver.Host
	cancel context.CancelFunc
	done   chan error

	upServer *upstream.Server
	upStore  upstream.Store
	upClient *upstream.Client
	idem     *idemserver.Server // with opts.httpUpstream

	proxy  *frontProxy // nil unless opts.proxy
	origin string      // what the browser talks to: the host or the proxy

	ctx     context.Context // the tab
	console *consoleLog
}

func newEnv(t testing.TB, opts options) *env {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is required for the browser tests: %v (apt-get install chromium)", err)
	}
	e := &env{t: t, root: t, opts: opts, addr: testsupport.FreeAddr(t), dataDir: t.TempDir(), console: &consoleLog{}, assets: opts.assets}

	switch {
	case opts.upstreamURL != "":
	case opts.httpUpstream:
		e.idem = idemserver.Start(t)
	default:
		srv, store, upURL := testupstream.Start(t, upstream.Options{Logger: testsupport.Logger(t), Token: opts.upstreamToken})
		e.upServer, e.upStore = srv, store
		e.upClient = &upstream.Client{BaseURL: upURL, Token: opts.upstreamToken}
	}

	for try := 0; ; try++ {
		err := e.tryStartHost()
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "is taken") || try == 5 {
			t.Fatalf("open host: %v", err)
		}
		e.addr = testsupport.FreeAddr(t) // another test took it meanwhile
	}
	t.Cleanup(e.stopHost)
	e.origin = "http://" + e.addr
	if opts.proxy {
		e.proxy = newFrontProxy(t, e.origin)
		e.origin = e.proxy.URL()
	}
	e.startBrowser()
	e.login()
	e.open()
	return e
}

// in makes t the test that the env's helpers report to, until t ends.
func (e *env) in(t testing.TB) {
	parent := e.t
	e.t = t
	t.Cleanup(func() { e.t = parent })
}

// ---- the host ----------------------------------------------------------------

func (e *env) startHost() {
	e.t.Helper()
	if err := e.tryStartHost(); err != nil {
		e.t.Fatalf("open host: %v", err)
	}
}

func (e *env) tryStartHost() error {
	cfg := localserver.Config{
		DataDir: e.dataDir,
		Addr:    e.addr,
		Assets:  e.assets,
		AppDir:  e.opts.appDir,
		Logger:  testsupport.Logger(e.root),
	}
	if e.idem != nil || e.opts.upstreamURL != "" {
		cfg.UpstreamProtocol = localserver.ProtocolHTTP
		cfg.UpstreamURL = e.opts.upstreamURL
		if e.idem != nil {
			cfg.UpstreamURL = e.idem.URL
		}
		cfg.Sync.MinBackoff = 20 * time.Millisecond
		cfg.Sync.MaxBackoff = 200 * time.Millisecond
		cfg.Sync.ProbeEvery = 100 * time.Millisecond
	} else {
		cfg.UpstreamURL = e.upClient.BaseURL
	}
	h, err := localserver.Open(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.host, e.cancel, e.done = h, cancel, make(chan error, 1)
	go func() { e.done <- h.Run(ctx) }()
	return nil
}

// stopHost shuts the host down and waits until it has stopped.
func (e *env) stopHost() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("host Run: %v", err)
		}
	case <-time.After(wait):
		e.t.Fatal("the host did not stop within 15 s")
	}
}

// setWorkOffline turns the host's work-offline mode on or off, as the
// tray's toggle does.
func (e *env) setWorkOffline(on bool) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+e.addr+"/api/mode", strings.NewReader(`{"work_offline":`+strconv.FormatBool(on)+`}`))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.host.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("PUT /api/mode: %s", resp.Status)
	}
}

// hostAPI calls the host's API as the tray and the CLI do (with the API
// token) and returns the status and the body.
func (e *env) hostAPI(method, path, body string, header ...string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://"+e.addr+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.host.Token())
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// ---- the upstream --------------------------------------------------------------

// appliedKeys returns the keys the upstream holds, in apply order.
func (e *env) appliedKeys() []string {
	e.t.Helper()
	keys, err := e.upStore.AppliedKeys(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// waitApplied waits until the upstream holds exactly want, in this order.
func (e *env) waitApplied(want ...string) {
	e.t.Helper()
	var got []string
	ok := poll(func() bool {
		got = e.appliedKeys()
		return len(got) >= len(want)
	})
	if !ok || !slices.Equal(got, want) {
		e.t.Fatalf("upstream holds %q, want %q (each once, in order)", got, want)
	}
}

// ---- the browser -----------------------------------------------------------------

func (e *env) startBrowser() {
	e.t.Helper()
	w, h := e.opts.width, e.opts.height
	if w == 0 {
		w, h = 1024, 768
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(e.t.TempDir()),
		chromedp.WindowSize(int(w), int(h)),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	e.t.Cleanup(func() {
		if e.t.Failed() {
			e.t.Logf("page: %s", e.snapshot())
		}
		cancel()
		cancelAlloc()
		if e.t.Failed() {
			e.t.Logf("browser console:\n%s", e.console)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		e.t.Fatalf("start chromium: %v", err)
	}
	e.ctx = ctx
	e.console.follow(ctx, "page")
	if e.opts.mobile || e.opts.width != 0 {
		var vp []chromedp.EmulateViewportOption
		if e.opts.mobile {
			vp = append(vp, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
		}
		e.do(chromedp.EmulateViewport(w, h, vp...))
	}
	for _, name := range e.opts.grant {
		e.grant(name)
	}
}

// grant grants a permission to the app's origin; the others stay as a
// fresh profile has them (periodic-background-sync: denied).
func (e *env) grant(name string) {
	e.t.Helper()
	if _, err := chromedp.CallBrowser(e.ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: e.origin,
	}); err != nil {
		e.t.Fatalf("grant %s: %v", name, err)
	}
}

// login follows a one-time login link, which sets the session cookie.
func (e *env) login() {
	e.t.Helper()
	link := strings.Replace(e.host.LoginURL(), "http://"+e.addr, e.origin, 1)
	e.do(chromedp.Navigate(link))
}

// open loads the app (with the test's query) and waits until a service
// worker controls it and the app has started.
func (e *env) open() {
	e.t.Helper()
	e.do(chromedp.Navigate(e.origin + "/" + e.opts.query))
	// The login link's redirect loaded the app once already, without the
	// query: wait for the worker this URL asks for.
	script := e.origin + "/sw.js"
	if strings.Contains(e.opts.query, "nosync=1") {
		script += "?nosync=1"
	}
	e.waitJS("the service worker "+script+" controls the page",
		`navigator.serviceWorker.controller && navigator.serviceWorker.controller.scriptURL === '`+script+`'`)
	e.waitJS("the app started", `document.documentElement.dataset.ready === 'true'`)
}

// reload reloads the tab and waits for the new document's app.
func (e *env) reload() {
	e.t.Helper()
	before := strconv.FormatFloat(eval[float64](e, `performance.timeOrigin`), 'f', -1, 64)
	e.do(chromedp.Reload())
	e.waitJS("the reloaded app started", `performance.timeOrigin !== `+before+` && document.documentElement.dataset.ready === 'true'`)
}

func (e *env) do(actions ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		e.t.Fatalf("browser: %v", err)
	}
}

// eval runs JavaScript in the page (awaiting a promise) and decodes its value.
func eval[T any](e *env, js string) T {
	e.t.Helper()
	return evalIn[T](e, e.ctx, js)
}

func evalIn[T any](e *env, ctx context.Context, js string) T {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		e.t.Fatalf("evaluate %.300s: %v", js, err)
	}
	return v
}

// waitJS waits until the expression is truthy in the page.
func (e *env) waitJS(what, js string) {
	e.t.Helper()
	e.waitJSIn(e.ctx, what, js)
}

func (e *env) waitJSIn(ctx context.Context, what, js string) {
	e.t.Helper()
	var last error
	ok := poll(func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		v, err := chromedp.Run(cctx, chromedp.Evaluate[bool]("!!("+js+")", chromedp.EvalAwaitPromise))
		last = err
		return err == nil && v
	})
	if !ok {
		e.t.Fatalf("timed out waiting for %s (%s; last error: %v)", what, js, last)
	}
}

// poll checks cond every 10 ms until it holds or wait has passed.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// ---- the app's page --------------------------------------------------------------

// send writes a message in the compose box and presses Send; it returns the
// message's key once the list shows it.
func (e *env) send(text string) string {
	e.t.Helper()
	e.do(
		chromedp.SetValue(chromedp.ID("text"), text),
		chromedp.Click(chromedp.CSS(`#compose button[type="submit"]`)),
	)
	var key string
	ok := poll(func() bool {
		for _, m := range e.messages() {
			if m.Text == text {
				key = m.Key
				return true
			}
		}
		return false
	})
	if !ok {
		e.t.Fatalf("the list never showed the message %.40q", text)
	}
	return key
}

// shown is a message as the page's list shows it.
type shown struct {
	Key    string `json:"key"`
	State  string `json:"state"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

func (e *env) messages() []shown {
	e.t.Helper()
	return eval[[]shown](e, `[...document.querySelectorAll('#messages li')].map((li) => ({
		key: li.dataset.key, state: li.dataset.state,
		text: li.querySelector('.msg-text').textContent,
		reason: (li.querySelector('.reason') || {}).textContent || '' }))`)
}

// shownAs returns how the page shows key ("" if it does not).
func (e *env) shownAs(key string) shown {
	e.t.Helper()
	for _, m := range e.messages() {
		if m.Key == key {
			return m
		}
	}
	return shown{}
}

// waitShown waits until the page shows every key in state.
func (e *env) waitShown(state string, keys ...string) {
	e.t.Helper()
	var got []shown
	ok := poll(func() bool {
		got = e.messages()
		for _, k := range keys {
			if !slices.ContainsFunc(got, func(m shown) bool { return m.Key == k && m.State == state }) {
				return false
			}
		}
		return true
	})
	if !ok {
		e.t.Fatalf("page shows %+v, want %q all %q", got, keys, state)
	}
}

// entry is an outbox entry in the browser's IndexedDB.
type entry struct {
	ID      int64           `json:"id"`
	Key     string          `json:"key"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	State   string          `json:"state"`
	Error   string          `json:"error"`
}

// readOutboxJS reads the outbox straight from IndexedDB, without the app's
// code, and without creating the database when it does not exist.
const readOutboxJS = `(async () => {
	if (!(await indexedDB.databases()).some((d) => d.name === 'synctray')) return [];
	const db = await new Promise((ok, fail) => { const r = indexedDB.open('synctray'); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
	try {
		if (!db.objectStoreNames.contains('outbox')) return [];
		return await new Promise((ok, fail) => { const q = db.transaction('outbox').objectStore('outbox').getAll(); q.onsuccess = () => ok(q.result); q.onerror = () => fail(q.error); });
	} finally { db.close(); }
})()`

func (e *env) outbox() []entry {
	e.t.Helper()
	return eval[[]entry](e, readOutboxJS)
}

func keysOf(entries []entry) []string {
	var keys []string
	for _, en := range entries {
		keys = append(keys, en.Key)
	}
	return keys
}

// text returns an element's text.
func (e *env) text(sel string) string {
	e.t.Helper()
	return eval[string](e, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel))
}

// ---- the service worker ------------------------------------------------------------

// worker attaches to the target of the service worker that controls the
// page (starting it if needed); the context detaches when the test ends.
func (e *env) worker() context.Context {
	e.t.Helper()
	script := eval[string](e, `navigator.serviceWorker.controller.scriptURL`)
	var id string
	ok := poll(func() bool {
		infos, err := chromedp.Targets(e.ctx)
		if err != nil {
			return false
		}
		for _, in := range infos {
			if in.Type == "service_worker" && in.URL == script {
				id = string(in.TargetID)
			}
		}
		if id == "" {
			// A stopped worker has no target: wake it.
			eval[chromedp.Void](e, `navigator.serviceWorker.ready.then((r) => r.active.postMessage({type: 'ping'}))`)
		}
		return id != ""
	})
	if !ok {
		e.t.Fatal("no service worker target")
	}
	ctx, cancel := chromedp.NewContext(e.ctx, chromedp.WithTargetID(target.ID(id)), chromedp.WithDetachOnCancel())
	e.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		e.t.Fatalf("attach to the service worker: %v", err)
	}
	e.console.follow(ctx, "worker")
	return ctx
}

// setOffline emulates (or lifts) offline on the given targets. The worker's
// target needs it too: the page's emulation does not stop its fetches.
func (e *env) setOffline(offline bool, targets ...context.Context) {
	e.t.Helper()
	for _, ctx := range targets {
		err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if err := t.Call(ctx, "Network.enable", map[string]any{}, nil); err != nil {
				return err
			}
			return t.Call(ctx, "Network.emulateNetworkConditions", map[string]any{
				"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1,
			}, nil)
		}))
		if err != nil {
			e.t.Fatalf("emulate offline=%v: %v", offline, err)
		}
	}
}

// registrationID returns the id of the app's service worker registration.
func (e *env) registrationID() serviceworker.RegistrationID {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	updates := chromedp.Events(ctx, serviceworker.WorkerRegistrationUpdated)
	if _, err := chromedp.Call(ctx, serviceworker.Enable, cdp.Empty{}); err != nil {
		e.t.Fatalf("ServiceWorker.enable: %v", err)
	}
	for ev, err := range updates {
		if err != nil {
			e.t.Fatalf("no service worker registration: %v", err)
		}
		for _, r := range ev.Registrations {
			if r.ScopeURL == e.origin+"/" && !r.IsDeleted {
				return r.RegistrationID
			}
		}
	}
	panic("unreachable")
}

// dispatchSync fires a Background Sync event with the tag "outbox".
func (e *env) dispatchSync(id serviceworker.RegistrationID) {
	e.t.Helper()
	e.dispatchSyncTag(id, "outbox")
}

// dispatchSyncTag fires a Background Sync event with the given tag.
func (e *env) dispatchSyncTag(id serviceworker.RegistrationID, tag string) {
	e.t.Helper()
	if _, err := chromedp.Call(e.ctx, serviceworker.DispatchSyncEvent, serviceworker.DispatchSyncEventParams{
		Origin: e.origin, RegistrationID: id, Tag: tag,
	}); err != nil {
		e.t.Fatalf("dispatch sync: %v", err)
	}
}

// cacheNames returns the names of the origin's caches.
func (e *env) cacheNames() []string {
	e.t.Helper()
	names := eval[[]string](e, `caches.keys()`)
	slices.Sort(names)
	return names
}

var versionRE = regexp.MustCompile(`const VERSION = '([0-9a-f]+)'`)

// swVersion returns the version the host puts in /sw.js now.
func (e *env) swVersion() string {
	e.t.Helper()
	resp, err := http.Get("http://" + e.addr + "/sw.js")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	m := versionRE.FindSubmatch(b)
	if m == nil {
		e.t.Fatalf("GET /sw.js has no version filled in: %.200s", b)
	}
	return string(m[1])
}

// snapshot describes the page, for failed tests.
func (e *env) snapshot() string {
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const $ = (id) => document.getElementById(id);
		const reg = navigator.serviceWorker && await navigator.serviceWorker.getRegistration();
		return JSON.stringify({
			url: location.href, readyState: document.readyState, ready: document.documentElement.dataset.ready,
			conn: $('conn') && $('conn').dataset.state, notice: $('notice') && $('notice').textContent,
			dataNote: $('data-note') && $('data-note').textContent, push: $('push-status') && $('push-status').dataset.state,
			messages: document.querySelectorAll('#messages li').length,
			controller: navigator.serviceWorker && navigator.serviceWorker.controller && navigator.serviceWorker.controller.scriptURL,
			workers: reg && [reg.installing, reg.waiting, reg.active].map((w) => w && w.state),
			caches: await caches.keys(),
		});
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		return err.Error()
	}
	return v
}

// ---- the browser's console -----------------------------------------------------------

// consoleLog keeps what the page and the worker logged, for failed tests.
type consoleLog struct {
	mu    sync.Mutex
	lines []string
}

func (c *consoleLog) follow(ctx context.Context, who string) {
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.lines = append(c.lines, fmt.Sprintf("%s %s: %s", m.Time.Format("15:04:05.000"), who, m))
			c.mu.Unlock()
		}
	}()
}

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// clickIn clicks the button labelled label in the list item of key.
func clickIn(key, label string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(`li[data-key="` + key + `"] button[aria-label^="` + label + `"]`))
}
