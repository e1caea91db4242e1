package app

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"synctray/internal/autostart"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

func TestStatusLine(t *testing.T) {
	since := time.Date(2026, 11, 25, 14, 2, 0, 0, time.Local)
	counts := func(kv ...any) outbox.Counts {
		c := outbox.Counts{}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(outbox.State)] = kv[i+1].(int)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		st       localserver.Status
		want     string
		wantIcon IconState
	}{
		{"online with nothing waiting", localserver.Status{Status: syncer.Status{Online: true}, Counts: counts(outbox.Synced, 5)},
			"Online · all synced", IconSynced},
		{"online with actions waiting", localserver.Status{Status: syncer.Status{Online: true}, Counts: counts(outbox.Queued, 2, outbox.Syncing, 1)},
			"Online · 2 queued · 1 syncing", IconQueued}, // the filters' words and counts
		{"offline since a time", localserver.Status{Status: syncer.Status{OfflineSince: &since}, Counts: counts(outbox.Queued, 12)},
			"Offline since 14:02 · 12 queued", IconOffline},
		{"offline says why, as the host puts it", localserver.Status{Status: syncer.Status{State: syncer.StateOffline, OfflineSince: &since,
			Problem: &syncer.Problem{Code: "unreachable", Message: "Upstream not reachable"}}, Counts: counts(outbox.Queued, 12)},
			"Offline since 14:02: Upstream not reachable · 12 queued", IconOffline},
		{"offline, no time known", localserver.Status{Counts: counts(outbox.Queued, 100000)},
			"Offline · 100,000 queued", IconOffline},
		{"working offline", localserver.Status{Status: syncer.Status{Online: true, WorkOffline: true}, Counts: counts(outbox.Queued, 2)},
			"Working offline · 2 queued", IconOffline},
		{"upstream rejected one", localserver.Status{Status: syncer.Status{Online: true}, Counts: counts(outbox.Failed, 1, outbox.Synced, 3)},
			"1 message rejected — open Outbox", IconError}, // says what to do
		{"rejected with a queue", localserver.Status{Status: syncer.Status{Online: true}, Counts: counts(outbox.Failed, 2, outbox.Queued, 4)},
			"2 messages rejected — open Outbox · 4 queued", IconError},
		{"blocked: the upstream refused the token", localserver.Status{Status: syncer.Status{State: syncer.StateBlocked,
			Problem: &syncer.Problem{Code: "unauthorized", Message: "Upstream refused the token (401 Unauthorized)"}}, Counts: counts(outbox.Queued, 3)},
			"Upstream refused the token (401 Unauthorized) · 3 queued", IconError},
		{"blocked while working offline still says why", localserver.Status{Status: syncer.Status{State: syncer.StateBlocked, WorkOffline: true,
			Problem: &syncer.Problem{Code: "disk_full", Message: "The disk holding /home/u/.config/synctray/outbox.db is full: free some space"}}},
			"The disk holding /home/u/.config/synctray/outbox.db is full: free some space", IconError},
		{"offline and rejected", localserver.Status{Status: syncer.Status{OfflineSince: &since}, Counts: counts(outbox.Failed, 1, outbox.Queued, 12)},
			"Offline since 14:02 · 12 queued · 1 rejected", IconError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, icon := StatusLine(tc.st)
			if got != tc.want || icon != tc.wantIcon {
				t.Fatalf("StatusLine = %q, %v; want %q, %v", got, icon, tc.want, tc.wantIcon)
			}
		})
	}
}

// menuLabels lists the menu as a user sees it: "---" for separators,
// "[x]" for a checked item, "(disabled)" for a greyed one.
func menuLabels(m *fyne.Menu) []string {
	var out []string
	for _, it := range m.Items {
		switch {
		case it.IsSeparator:
			out = append(out, "---")
		default:
			l := it.Label
			if it.Checked {
				l += " [x]"
			}
			if it.Disabled {
				l += " (disabled)"
			}
			out = append(out, l)
		}
	}
	return out
}

func item(m *fyne.Menu, label string) *fyne.MenuItem {
	for _, it := range m.Items {
		if it.Label == label {
			return it
		}
	}
	return nil
}

func statusItem(tr *fakeTray) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.menu == nil {
		return ""
	}
	return tr.menu.Items[0].Label
}

func TestTrayMenuShowsEachState(t *testing.T) {
	since := time.Date(2026, 11, 25, 14, 2, 0, 0, time.Local)
	for _, tc := range []struct {
		name     string
		setup    func(f *fakeHost)
		line     string
		icon     string
		checkOff bool
	}{
		{"synced", func(f *fakeHost) { f.add("message", outbox.Synced, `{}`) }, "Online · all synced", "synced.png", false},
		{"queued", func(f *fakeHost) {
			for range 3 {
				f.add("message", outbox.Queued, `{}`)
			}
		}, "Online · 3 queued", "queued.png", false},
		{"offline", func(f *fakeHost) {
			for range 12 {
				f.add("message", outbox.Queued, `{}`)
			}
			f.st.Online, f.st.OfflineSince = false, &since
		}, "Offline since 14:02 · 12 queued", "offline.png", false},
		{"working offline", func(f *fakeHost) {
			f.add("message", outbox.Queued, `{}`)
			f.st.WorkOffline = true
		}, "Working offline · 1 queued", "offline.png", true},
		{"error", func(f *fakeHost) { f.add("message", outbox.Failed, `{}`) }, "1 message rejected — open Outbox", "error.png", false},
		{"blocked", func(f *fakeHost) {
			f.add("message", outbox.Queued, `{}`)
			f.st.State, f.st.Online = syncer.StateBlocked, false
			f.st.Problem = &syncer.Problem{Code: "unauthorized", Message: "Upstream refused the token (401 Unauthorized)", Since: since}
		}, "Upstream refused the token (401 Unauthorized) · 1 queued", "error.png", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost()
			tc.setup(f)
			tr := &fakeTray{}
			a := startApp(t, f, Options{Tray: tr})
			waitFor(t, a, "the status line "+tc.line, func() bool { return statusItem(tr) == tc.line })
			inspect(a, func() {
				offline := LabelWorkOffline
				if tc.checkOff {
					offline += " [x]"
				}
				login := LabelStartLogin + " (not supported on " + runtime.GOOS + " yet) (disabled)"
				want := []string{tc.line + " (disabled)", "---", LabelOpen, LabelOutbox, LabelSyncNow, offline, login, "---", LabelQuit}
				if got := menuLabels(tr.menu); !slices.Equal(got, want) {
					t.Errorf("menu:\n got %q\nwant %q", got, want)
				}
				if got := tr.icon(); got != tc.icon {
					t.Errorf("icon %q, want %q", got, tc.icon)
				}
			})
		})
	}
}

func TestTrayFollowsTheHostLive(t *testing.T) {
	f := newFakeHost()
	q := f.add("message", outbox.Queued, `{"text":"hi"}`)
	tr := &fakeTray{}
	a := startApp(t, f, Options{Tray: tr})
	waitFor(t, a, "one queued", func() bool { return statusItem(tr) == "Online · 1 queued" })

	since := time.Date(2026, 11, 25, 14, 2, 0, 0, time.Local)
	f.setConn(false, &since)
	waitFor(t, a, "offline", func() bool { return statusItem(tr) == "Offline since 14:02 · 1 queued" })
	if got := tr.icon(); got != "offline.png" {
		t.Errorf("icon %q, want offline.png", got)
	}
	f.setConn(true, nil)
	f.setState(q.ID, outbox.Synced, "")
	waitFor(t, a, "all synced", func() bool { return statusItem(tr) == "Online · all synced" })
	if got := tr.icon(); got != "synced.png" {
		t.Errorf("icon %q, want synced.png", got)
	}
}

func TestTrayWorkOfflineTogglesTheHost(t *testing.T) {
	f := newFakeHost()
	f.add("message", outbox.Queued, `{}`)
	f.add("message", outbox.Queued, `{}`)
	tr := &fakeTray{}
	a := startApp(t, f, Options{Tray: tr})
	waitFor(t, a, "online", func() bool { return statusItem(tr) == "Online · 2 queued" })

	var toggle func()
	inspect(a, func() { toggle = item(tr.menu, LabelWorkOffline).Action })
	toggle()
	waitFor(t, a, "working offline", func() bool {
		return statusItem(tr) == "Working offline · 2 queued" && item(tr.menu, LabelWorkOffline).Checked
	})
	if !f.called("SetWorkOffline true") {
		t.Fatalf("host calls %q: want SetWorkOffline true", f.calls)
	}
	toggle()
	waitFor(t, a, "online again", func() bool {
		return statusItem(tr) == "Online · 2 queued" && !item(tr.menu, LabelWorkOffline).Checked
	})
	if !f.called("SetWorkOffline false") {
		t.Fatalf("host calls %q: want SetWorkOffline false", f.calls)
	}
}

func TestTraySyncNowOpenAndOutbox(t *testing.T) {
	f := newFakeHost()
	f.add("message", outbox.Queued, `{}`)
	tr := &fakeTray{}
	opened := make(chan string, 1)
	a := startApp(t, f, Options{Tray: tr, OpenURL: func(u string) error { opened <- u; return nil }})
	waitFor(t, a, "one queued", func() bool { return statusItem(tr) == "Online · 1 queued" })

	var syncNow, open, outboxItem func()
	inspect(a, func() {
		syncNow = item(tr.menu, LabelSyncNow).Action
		open = item(tr.menu, LabelOpen).Action
		outboxItem = item(tr.menu, LabelOutbox).Action
	})
	syncNow()
	waitFor(t, a, "synced", func() bool { return statusItem(tr) == "Online · all synced" })
	if !f.called("SyncNow") {
		t.Errorf("host calls %q: want SyncNow", f.calls)
	}
	open()
	select {
	case u := <-opened:
		if !strings.Contains(u, "/login?token=") {
			t.Errorf("opened %q, want a login link", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open synctray opened nothing")
	}
	outboxItem()
	waitFor(t, a, "the inspector window", func() bool { return a.insp != nil && a.snapshot().visible })
}

func TestTrayStartAtLoginWritesTheAutostartFile(t *testing.T) {
	dir := t.TempDir()
	as := autostart.NewXDG(dir, []string{"/opt/sync tray/synctray", "--data-dir=/home/me/my data", "--addr=127.0.0.1:7717"})
	tr := &fakeTray{}
	a := startApp(t, newFakeHost(), Options{Tray: tr, Autostart: as})
	waitFor(t, a, "the menu", func() bool { return statusItem(tr) == "Online · all synced" })

	var toggle func()
	inspect(a, func() { toggle = item(tr.menu, LabelStartLogin).Action })
	toggle()
	waitFor(t, a, "checked", func() bool { return item(tr.menu, LabelStartLogin).Checked })
	b, err := os.ReadFile(filepath.Join(dir, "autostart", ID+".desktop"))
	if err != nil {
		t.Fatal(err)
	}
	want := `Exec="/opt/sync tray/synctray" "--data-dir=/home/me/my data" "--addr=127.0.0.1:7717"`
	if !strings.Contains(string(b), want+"\n") || !strings.HasPrefix(string(b), "[Desktop Entry]\n") {
		t.Errorf("autostart file:\n%s\nwant a line %s", b, want)
	}
	toggle()
	waitFor(t, a, "unchecked", func() bool { return !item(tr.menu, LabelStartLogin).Checked })
	if _, err := os.Stat(as.Path); !os.IsNotExist(err) {
		t.Errorf("autostart file still there: %v", err)
	}
}
