package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

// fakeHost is a hand-written, in-memory Host: the outbox's state machine
// and live events without SQLite or the network.
type fakeHost struct {
	hub *localserver.Hub

	mu       sync.Mutex
	acts     []outbox.Action // in id order
	hist     map[int64][]outbox.Change
	st       syncer.Status
	calls    []string
	maxLimit int // the largest page List was asked for
	syncErr  error
}

var _ Host = (*fakeHost)(nil)

func newFakeHost() *fakeHost {
	return &fakeHost{hub: localserver.NewHub(0, 4096), hist: map[int64][]outbox.Change{},
		st: syncer.Status{Online: true, Upstream: "http://upstream.test"}}
}

var fakeEpoch = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// add stores an action in a state, without events (set up before Start).
func (f *fakeHost) add(typ string, state outbox.State, payload string) outbox.Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := int64(len(f.acts) + 1)
	a := outbox.Action{ID: id, Key: fmt.Sprintf("0190a0b0-0000-7000-8000-%012d", id), Type: typ,
		Payload: json.RawMessage(payload), State: state, CreatedAt: fakeEpoch.Add(time.Duration(id) * time.Second)}
	a.UpdatedAt = a.CreatedAt
	var p struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(a.Payload, &p) == nil {
		a.Summary = p.Text // as the real host does (localserver.describe)
	}
	if state == outbox.Failed {
		a.Attempts, a.LastError = 1, "payload rejected: text too long"
	}
	f.acts = append(f.acts, a)
	f.hist[id] = []outbox.Change{{At: a.CreatedAt, To: outbox.Queued}}
	if state != outbox.Queued {
		f.hist[id] = append(f.hist[id], outbox.Change{At: a.CreatedAt, From: outbox.Queued, To: state})
	}
	return a
}

func (f *fakeHost) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeHost) called(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.calls, s)
}

func (f *fakeHost) statusLocked() localserver.Status {
	c := outbox.Counts{}
	for _, s := range outbox.States {
		c[s] = 0
	}
	for _, a := range f.acts {
		c[a.State]++
	}
	return localserver.Status{Status: f.st, Counts: c}
}

// publishLocked sends the events the real host sends after a commit.
func (f *fakeHost) publishLocked(changed ...outbox.Action) {
	for i := range changed {
		a := changed[i]
		f.hub.Publish(localserver.Event{Kind: "action", Action: &a})
	}
	st := f.statusLocked()
	f.hub.Publish(localserver.Event{Kind: "status", Status: &st})
}

// setState moves an action as the engine would (e.g. the host reports it
// synced) and publishes the events.
func (f *fakeHost) setState(id int64, to outbox.State, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := &f.acts[id-1]
	f.hist[id] = append(f.hist[id], outbox.Change{At: time.Now(), From: a.State, To: to, Detail: detail})
	a.State, a.UpdatedAt = to, time.Now()
	if to == outbox.Failed {
		a.LastError = detail
	}
	f.publishLocked(*a)
}

// setConn changes the connection status and publishes it.
func (f *fakeHost) setConn(online bool, since *time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.Online, f.st.OfflineSince = online, since
	f.publishLocked()
}

func (f *fakeHost) Status(ctx context.Context) (localserver.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusLocked(), nil
}

func (f *fakeHost) List(ctx context.Context, q outbox.ListQuery) (outbox.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxLimit = max(f.maxLimit, q.Limit)
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	var p outbox.Page
	for i := len(f.acts) - 1; i >= 0; i-- {
		a := f.acts[i]
		if (q.Before > 0 && a.ID >= q.Before) || (q.State != "" && a.State != q.State) {
			continue
		}
		if len(p.Actions) == limit {
			p.Next = p.Actions[limit-1].ID
			break
		}
		p.Actions = append(p.Actions, a)
	}
	return p, nil
}

func (f *fakeHost) Get(ctx context.Context, id int64) (outbox.Action, []outbox.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id < 1 || int(id) > len(f.acts) {
		return outbox.Action{}, nil, outbox.ErrNotFound
	}
	return f.acts[id-1], slices.Clone(f.hist[id]), nil
}

func (f *fakeHost) transition(id int64, to outbox.State, detail string) (outbox.Action, error) {
	if id < 1 || int(id) > len(f.acts) {
		return outbox.Action{}, outbox.ErrNotFound
	}
	a := &f.acts[id-1]
	if !outbox.CanTransition(a.State, to) {
		return outbox.Action{}, &outbox.TransitionError{ID: id, From: a.State, To: to}
	}
	f.hist[id] = append(f.hist[id], outbox.Change{At: time.Now(), From: a.State, To: to, Detail: detail})
	a.State = to
	f.publishLocked(*a)
	return *a, nil
}

func (f *fakeHost) Cancel(ctx context.Context, id int64) (outbox.Action, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("Cancel %d", id)
	return f.transition(id, outbox.Cancelled, "user cancelled")
}

func (f *fakeHost) Retry(ctx context.Context, id int64) (outbox.Action, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("Retry %d", id)
	return f.transition(id, outbox.Queued, "user retry")
}

func (f *fakeHost) CancelAllQueued(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("CancelAllQueued")
	var changed []outbox.Action
	for i := range f.acts {
		if f.acts[i].State == outbox.Queued {
			f.acts[i].State = outbox.Cancelled
			changed = append(changed, f.acts[i])
		}
	}
	f.publishLocked(changed...)
	return len(changed), nil
}

func (f *fakeHost) SyncNow(ctx context.Context) (syncer.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("SyncNow")
	if f.syncErr != nil {
		return syncer.Report{Batches: 1, Err: f.syncErr}, nil
	}
	var rep syncer.Report
	var changed []outbox.Action
	for i := range f.acts {
		if f.acts[i].State == outbox.Queued {
			f.acts[i].State = outbox.Synced
			f.acts[i].Attempts++
			changed = append(changed, f.acts[i])
			rep.Synced++
		}
	}
	if len(changed) > 0 {
		rep.Batches = 1
	}
	f.publishLocked(changed...)
	return rep, nil
}

func (f *fakeHost) SetWorkOffline(ctx context.Context, off bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("SetWorkOffline %v", off)
	f.st.WorkOffline = off
	f.publishLocked()
	return nil
}

func (f *fakeHost) Subscribe(since int64) *localserver.Subscription { return f.hub.Subscribe(since) }

func (f *fakeHost) LoginURL() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("LoginURL")
	return "http://127.0.0.1:7717/login?token=one-time"
}

// fakeTray records what the app hands to the system tray.
type fakeTray struct {
	mu    sync.Mutex
	menu  *fyne.Menu
	icons []string
}

var _ Tray = (*fakeTray)(nil)

func (t *fakeTray) SetSystemTrayMenu(m *fyne.Menu) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.menu = m
}

func (t *fakeTray) SetSystemTrayIcon(r fyne.Resource) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.icons = append(t.icons, r.Name())
}

func (t *fakeTray) icon() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.icons) == 0 {
		return ""
	}
	return t.icons[len(t.icons)-1]
}

// startApp builds the app on Fyne's test app with fast refreshes and
// starts it; it stops with the test.
func startApp(t *testing.T, h Host, o Options) *App {
	t.Helper()
	fa := test.NewApp()
	o.Host = h
	if o.RefreshEvery == 0 {
		o.RefreshEvery = 10 * time.Millisecond
	}
	if o.NotifyWindow == 0 {
		o.NotifyWindow = 50 * time.Millisecond
	}
	a := New(fa, o)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.Start(ctx)
	return a
}

// inspect runs f with the UI lock held: widgets are read (and tapped) as
// on the UI thread.
func inspect(a *App, f func()) {
	a.uiMu.Lock()
	defer a.uiMu.Unlock()
	f()
}

// waitFor is testsupport.WaitFor with cond run under the UI lock.
func waitFor(t *testing.T, a *App, what string, cond func() bool) {
	t.Helper()
	testsupport.WaitFor(t, what, func() bool {
		var ok bool
		inspect(a, func() { ok = cond() })
		return ok
	})
}
