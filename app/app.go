// Package app is synctray's desktop side, built with Fyne: the tray icon
// and menu, the outbox inspector window and desktop notifications. It owns
// no outbox logic: it drives the local host through the Host interface
// (the JSON API's operations as Go calls), so the UI is tested with a fake
// host and the host is tested without a UI.
//
// State lives in a plain view-model guarded by a mutex. Host calls run on
// their own goroutines; live events from the host mark the view dirty and
// one refresher goroutine reloads it at most every Options.RefreshEvery,
// then applies it to the widgets through fyne.Do, so a burst of changes
// costs one reload and the table keeps its selection.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"fyne.io/fyne/v2"

	"synctray/internal/autostart"
	"synctray/localserver"
	"synctray/localserver/clock"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

// ID is the application id (FyneApp.toml, desktop files, notifications).
const ID = "io.github.synctray"

// Version is the application version: FyneApp.toml's, which the main
// package embeds and sets here at start ("dev" in tests).
var Version = "dev"

// Host is what the tray app needs from the local host: the operations of
// its JSON API, as Go calls. *localserver.Host implements it.
type Host interface {
	// Status returns the connection state and the outbox counts.
	Status(ctx context.Context) (localserver.Status, error)
	// List returns a page of actions, newest first.
	List(ctx context.Context, q outbox.ListQuery) (outbox.Page, error)
	// Get returns an action with its history. Errors: outbox.ErrNotFound.
	Get(ctx context.Context, id int64) (outbox.Action, []outbox.Change, error)
	// Cancel cancels a queued or failed action. Errors: outbox.ErrNotFound,
	// *outbox.TransitionError (its message says why).
	Cancel(ctx context.Context, id int64) (outbox.Action, error)
	// Retry queues a failed action again. Errors: outbox.ErrNotFound,
	// *outbox.TransitionError.
	Retry(ctx context.Context, id int64) (outbox.Action, error)
	// CancelAllQueued cancels every queued action and says how many.
	CancelAllQueued(ctx context.Context) (int, error)
	// SyncNow sends everything queued now, also in work-offline mode; a
	// transient failure that stopped it is in the report's Err.
	SyncNow(ctx context.Context) (syncer.Report, error)
	// SetWorkOffline pauses (true) or resumes (false) automatic sync.
	SetWorkOffline(ctx context.Context, off bool) error
	// Subscribe returns live events ("action", "status", "report",
	// "message", "resync"); the caller closes it.
	Subscribe(since int64) *localserver.Subscription
	// LoginURL returns a one-time login link for the browser.
	LoginURL() string
}

// Tray is the system tray. fyne's desktop.App implements it; tests use a
// fake, since the test app is not a desktop.App.
type Tray interface {
	SetSystemTrayMenu(*fyne.Menu)
	SetSystemTrayIcon(fyne.Resource)
}

// Options configure an App. Zero values are the documented defaults.
type Options struct {
	Host Host // required
	// Tray is the system tray; nil: there is none (no session bus), and
	// the inspector window opens at start instead.
	Tray Tray
	// ShowAtStart opens the inspector window at start (e.g. when there is
	// a tray but no tray host to show it yet).
	ShowAtStart bool
	// OpenURL opens a link in the default browser; nil: the link is logged.
	OpenURL func(url string) error
	// Quit stops the app gracefully (the host drains and closes, then the
	// Fyne app quits); nil: the Fyne app quits at once.
	Quit func()
	// Notify shows a desktop notification; nil: fyne.App.SendNotification
	// (which cannot replace or expire them: see DesktopNotifications).
	// It is called from a background goroutine.
	Notify func(Notification)
	// Autostart is the "Start at login" entry; nil: not supported on this
	// system (the menu says so).
	Autostart autostart.Entry
	Logger    *slog.Logger // nil: slog.Default()
	// RefreshEvery is the least time between two reloads of the view; 0: 250 ms.
	RefreshEvery time.Duration
	// NotifyWindow coalesces notifications of one kind: the first event
	// opens the window, one notification sums them up when it closes; 0: 2 s.
	NotifyWindow time.Duration
	// PageSize is the number of rows the table shows per page; 0: 100.
	PageSize int
	// Clock times the notification window; nil: the wall clock. The tray
	// passes the host's clock.
	Clock clock.Clock
	// Do runs a function on the UI thread; nil: fyne.Do. Tests pass one
	// that runs it later, as the desktop driver does.
	Do func(func())
}

// App is the running tray app. Create it with New, then Start it.
type App struct {
	fa   fyne.App
	o    Options
	host Host
	log  *slog.Logger

	tray  *trayMenu   // nil without a tray
	insp  *inspector  // built on first show; touched only on the UI thread
	link  *linkWindow // the link the browser could not open; UI thread only
	notes *notifier

	ctx    context.Context
	mu     sync.Mutex // guards vm
	vm     viewModel
	uiMu   sync.Mutex // held while widgets change (see ui)
	dirty  chan struct{}
	urgent chan struct{}
}

// viewModel is the state the widgets show, independent of them.
type viewModel struct {
	status     localserver.Status
	haveStatus bool
	needStatus bool // reload the status from the host (not just events)
	visible    bool // the inspector window is shown
	filter     outbox.State
	cursors    []int64 // the "before" cursor of each page up to the current one
	gen        int     // bumped when the filter or page changes
	selected   int64   // action id shown in the detail pane; 0: none
	notice     notice
	autostart  bool
}

type notice struct {
	text string
	err  bool
}

// New builds the app on a Fyne app (test.NewApp() in tests). Nothing runs
// until Start.
func New(fa fyne.App, o Options) *App {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = 250 * time.Millisecond
	}
	if o.NotifyWindow <= 0 {
		o.NotifyWindow = 2 * time.Second
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	a := &App{fa: fa, o: o, host: o.Host, log: o.Logger,
		dirty: make(chan struct{}, 1), urgent: make(chan struct{}, 1), ctx: context.Background()}
	a.vm.cursors = []int64{0}
	a.vm.needStatus = true
	if o.Autostart != nil {
		a.vm.autostart = o.Autostart.Enabled()
	}
	send := o.Notify
	if send == nil {
		send = fyneNotify(fa)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	a.notes = newNotifier(o.NotifyWindow, o.Clock, send)
	if o.Tray != nil {
		a.tray = newTrayMenu(a, o.Tray)
	}
	return a
}

// Start installs the tray, follows the host's events and keeps the view
// up to date until ctx is cancelled. Call it once, on the UI thread (in
// main, before fyne.App.Run).
func (a *App) Start(ctx context.Context) {
	a.ctx = ctx
	if a.tray != nil {
		a.tray.install()
	}
	sub := a.host.Subscribe(0) // now: no event between Start and the first reload is missed
	go a.follow(ctx, sub)
	go a.refreshLoop(ctx)
	go func() {
		<-ctx.Done()
		a.notes.stop()
	}()
	if a.tray == nil || a.o.ShowAtStart {
		a.ShowInspector()
	}
	a.kick(true)
}

// ShowInspector shows the outbox window (building it the first time) and
// brings it to the front. It is safe to call from any goroutine.
func (a *App) ShowInspector() {
	// visible first: the kick below must find the window wanted, whenever
	// the UI thread gets to showing it (fyne.Do runs later, on that thread).
	a.mu.Lock()
	a.vm.visible = true
	a.mu.Unlock()
	a.ui(func() {
		if a.insp == nil {
			a.insp = newInspector(a)
		}
		a.insp.w.Show()
		a.insp.w.RequestFocus()
		a.insp.render(a.snapshot())
	})
	a.kick(true)
}

// ui runs f on Fyne's UI thread with uiMu held, so that tests (whose
// driver runs f on the calling goroutine) can read widgets consistently
// under the same lock. Handlers that Fyne calls must not call ui
// synchronously: they change the view-model and kick the refresher.
func (a *App) ui(f func()) {
	do := fyne.Do
	if a.o.Do != nil {
		do = a.o.Do
	}
	do(func() {
		a.uiMu.Lock()
		defer a.uiMu.Unlock()
		f()
	})
}

// kick asks the refresher for a reload: urgent ones (the user did
// something) skip the rate limit.
func (a *App) kick(urgent bool) {
	ch := a.dirty
	if urgent {
		ch = a.urgent
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (a *App) snapshot() viewModel {
	a.mu.Lock()
	defer a.mu.Unlock()
	vm := a.vm
	vm.cursors = append([]int64(nil), a.vm.cursors...)
	return vm
}

func (a *App) update(f func(vm *viewModel)) {
	a.mu.Lock()
	f(&a.vm)
	a.mu.Unlock()
}

// follow turns the host's live events into reloads and notifications.
func (a *App) follow(ctx context.Context, sub *localserver.Subscription) {
	var last int64
	for ctx.Err() == nil {
		if sub == nil {
			sub = a.host.Subscribe(last)
		}
		func() {
			defer sub.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-sub.C:
					if !ok { // dropped for falling behind: subscribe again from here
						return
					}
					last = ev.Seq
					a.event(ev)
				}
			}
		}()
		sub = nil
	}
}

func (a *App) event(ev localserver.Event) {
	switch ev.Kind {
	case "status":
		if st := ev.Status; st != nil {
			var news bool
			a.update(func(vm *viewModel) {
				// A new blocking problem is news once; online again clears it.
				news = st.State == syncer.StateBlocked && st.Problem != nil &&
					(!vm.haveStatus || vm.status.Problem == nil || vm.status.Problem.Code != st.Problem.Code || !vm.status.Problem.Since.Equal(st.Problem.Since))
				vm.status, vm.haveStatus = *st, true
			})
			if news {
				a.notes.add("blocked", 1, st.Problem.Message)
			}
		}
	case "action":
		if act := ev.Action; act != nil {
			if act.State == outbox.Failed {
				a.notes.add("rejected", 1, rejectedText(*act))
			}
		}
	case "report":
		if r := ev.Report; r != nil && r.AfterOffline && r.Synced > 0 {
			a.notes.add("synced", r.Synced, "")
		}
	case "message":
		if m := ev.Message; m != nil && !m.Own { // the host marks the echo of our own actions
			a.notes.add("message", 1, m.Text())
		}
	case "resync":
		a.update(func(vm *viewModel) { vm.needStatus = true })
	}
	a.kick(false)
}

// refreshLoop reloads the view when something changed, at most every
// RefreshEvery, or at once when the user asked for it.
func (a *App) refreshLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.dirty:
		case <-a.urgent:
		}
		a.refresh(ctx)
		t := time.NewTimer(a.o.RefreshEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-a.urgent:
			t.Stop()
			a.kick(true)
		}
	}
}

// pageView is one reload of the table and the detail pane.
type pageView struct {
	gen    int
	page   outbox.Page
	err    error
	detail *detailView
}

type detailView struct {
	id      int64
	act     outbox.Action
	history []outbox.Change
	err     error
}

// refresh reloads what is shown (the status always; the table and the
// detail pane while the window is visible) and applies it on the UI thread.
func (a *App) refresh(ctx context.Context) {
	vm := a.snapshot()
	if vm.needStatus || !vm.haveStatus {
		a.update(func(vm *viewModel) { vm.needStatus = false })
		st, err := a.host.Status(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("tray: status", "err", err)
			}
		} else {
			a.update(func(vm *viewModel) { vm.status, vm.haveStatus = st, true })
		}
	}
	var pv *pageView
	if vm.visible {
		pv = &pageView{gen: vm.gen}
		pv.page, pv.err = a.host.List(ctx, outbox.ListQuery{State: vm.filter, Limit: a.o.PageSize, Before: vm.cursors[len(vm.cursors)-1]})
		if vm.selected != 0 {
			d := &detailView{id: vm.selected}
			d.act, d.history, d.err = a.host.Get(ctx, vm.selected)
			pv.detail = d
		}
	}
	if ctx.Err() != nil {
		return
	}
	a.ui(func() {
		vm := a.snapshot()
		if a.tray != nil {
			a.tray.update(vm)
		}
		if a.insp != nil {
			a.insp.apply(vm, pv)
		}
	})
}

// setNotice shows a line of feedback in the inspector.
func (a *App) setNotice(text string, isErr bool) {
	a.update(func(vm *viewModel) { vm.notice = notice{text: text, err: isErr} })
	a.ui(func() {
		if a.insp != nil {
			a.insp.render(a.snapshot())
		}
	})
}

// The commands below are what the tray menu and the window's buttons do.
// Each calls the host on its own goroutine and reloads the view after.

func (a *App) syncNow() {
	go func() {
		a.setNotice("Syncing…", false)
		rep, err := a.host.SyncNow(a.ctx)
		a.update(func(vm *viewModel) { vm.needStatus = true })
		switch {
		case err != nil:
			a.commandFailed("Sync failed", err)
		case rep.Err != nil:
			a.commandFailed(fmt.Sprintf("Sync stopped after %s", plural(rep.Synced, "action")), rep.Err)
		case rep.Batches == 0:
			a.setNotice("Nothing to sync: the outbox has no queued actions", false)
		default:
			text := "Synced " + plural(rep.Synced, "action")
			if rep.Rejected > 0 {
				text += fmt.Sprintf("; the upstream rejected %d", rep.Rejected)
			}
			a.setNotice(text, rep.Rejected > 0)
		}
		a.kick(true)
	}()
}

// commandFailed reports an error in the window, and as a notification
// when the window is hidden (the tray menu has no other way to say it).
func (a *App) commandFailed(what string, err error) {
	a.setNotice(what+": "+err.Error(), true)
	if !a.snapshot().visible {
		a.notes.send(Notification{Kind: "error", Title: what, Body: err.Error()})
	}
}

func (a *App) setWorkOffline(off bool) {
	go func() {
		if err := a.host.SetWorkOffline(a.ctx, off); err != nil {
			a.commandFailed("Could not change work-offline mode", err)
			return
		}
		a.update(func(vm *viewModel) {
			vm.status.WorkOffline = off
			vm.needStatus = true
		})
		if off {
			a.setNotice("Working offline: automatic sync is paused (Sync now still sends)", false)
		} else {
			a.setNotice("Back to automatic sync", false)
		}
		a.kick(true)
	}()
}

func (a *App) change(verb string, id int64, f func(context.Context, int64) (outbox.Action, error)) {
	go func() {
		act, err := f(a.ctx, id)
		if err != nil {
			var te *outbox.TransitionError
			if errors.As(err, &te) || errors.Is(err, outbox.ErrNotFound) {
				a.setNotice(err.Error(), true)
			} else {
				a.commandFailed(fmt.Sprintf("Could not %s action %d", verb, id), err)
			}
		} else {
			a.setNotice(fmt.Sprintf("Action %d is now %s", act.ID, act.State), false)
		}
		a.update(func(vm *viewModel) { vm.needStatus = true })
		a.kick(true)
	}()
}

func (a *App) cancelAction(id int64) { a.change("cancel", id, a.host.Cancel) }
func (a *App) retryAction(id int64)  { a.change("retry", id, a.host.Retry) }

func (a *App) cancelAllQueued() {
	go func() {
		n, err := a.host.CancelAllQueued(a.ctx)
		if err != nil {
			a.commandFailed("Could not cancel the queued actions", err)
		} else {
			a.setNotice("Cancelled "+plural(n, "queued action"), false)
		}
		a.update(func(vm *viewModel) { vm.needStatus = true })
		a.kick(true)
	}()
}

func (a *App) openBrowser() {
	go func() {
		url := a.host.LoginURL()
		if a.o.OpenURL == nil {
			a.log.Info("open synctray in a browser", "url", url)
			return
		}
		if err := a.o.OpenURL(url); err != nil {
			// Hand the link over: a window with it and a Copy button.
			a.log.Warn("open the browser", "err", err)
			a.ui(func() { a.showLink(url, err) })
		}
	}()
}

func (a *App) setAutostart(on bool) {
	go func() {
		if a.o.Autostart == nil {
			return
		}
		if err := a.o.Autostart.SetEnabled(on); err != nil {
			a.commandFailed("Start at login", err)
		}
		a.update(func(vm *viewModel) { vm.autostart = a.o.Autostart.Enabled() })
		a.kick(true)
	}()
}

func (a *App) quit() {
	a.ui(func() {
		if a.insp != nil {
			a.insp.w.Hide()
		}
	})
	if a.o.Quit != nil {
		a.o.Quit()
		return
	}
	a.ui(a.fa.Quit)
}
