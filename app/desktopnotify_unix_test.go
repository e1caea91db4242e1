//go:build linux || freebsd || openbsd || netbsd

package app

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
)

// notifyCall is one org.freedesktop.Notifications.Notify call as the
// server saw it, and the id it answered.
type notifyCall struct {
	App      string
	Replaces uint32
	Summary  string
	Body     string
	Timeout  int32
	ID       uint32
}

// fakeNotifications owns org.freedesktop.Notifications on a bus and
// records the Notify calls. Its ids start at 41, so that an id the app
// passes back cannot be a coincidence.
type fakeNotifications struct {
	mu    sync.Mutex
	calls []notifyCall
	next  uint32
}

func (s *fakeNotifications) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := replaces // the spec: replacing keeps the id
	if id == 0 {
		s.next++
		id = 40 + s.next
	}
	s.calls = append(s.calls, notifyCall{app, replaces, summary, body, timeout, id})
	return id, nil
}

func (s *fakeNotifications) seen() []notifyCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notifyCall(nil), s.calls...)
}

// privateBus starts a session bus of the test's own and returns its address.
func privateBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Fatal("dbus-daemon is not installed: this test needs it (Debian package dbus; `make deps` installs it)")
	}
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard // "Failed to set fd limit": harmless
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	go io.Copy(io.Discard, out)
	if err != nil || strings.TrimSpace(addr) == "" {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

func startFakeNotifications(t *testing.T, addr string) *fakeNotifications {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to the test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &fakeNotifications{}
	if err := conn.Export(s, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.Notifications", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.Notifications: %v (reply %v)", err, reply)
	}
	return s
}

func TestARejectionNotificationNamesTheMessageExpiresAndReplacesThePreviousOne(t *testing.T) {
	addr := privateBus(t)
	server := startFakeNotifications(t, addr)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d := NewDBusNotifier(conn, ID, "")

	f := newFakeHost()
	meeting := f.add("message", outbox.Queued, `{"text":"Meeting at 3"}`)
	lunch := f.add("message", outbox.Queued, `{"text":"Lunch at 1"}`)
	var tearDown atomic.Bool // the bus connection closes while a notification may be on its way
	startApp(t, f, Options{Tray: &fakeTray{}, Notify: func(n Notification) {
		if err := d.Notify(context.Background(), n); err != nil && !tearDown.Load() {
			t.Errorf("notify: %v", err)
		}
	}})
	t.Cleanup(func() { tearDown.Store(true) }) // runs before the app and the bus stop

	f.setState(meeting.ID, outbox.Failed, "message too rude")
	testsupport.WaitFor(t, "the first rejection notification", func() bool { return len(server.seen()) == 1 })
	f.setState(lunch.ID, outbox.Failed, "message too long")
	testsupport.WaitFor(t, "the second rejection notification", func() bool { return len(server.seen()) == 2 })
	f.hub.Publish(localserver.Event{Kind: "report", Report: &localserver.SyncReport{Synced: 3, AfterOffline: true}})
	testsupport.WaitFor(t, "the back-online notification", func() bool { return len(server.seen()) == 3 })

	calls := server.seen()
	first, second, synced := calls[0], calls[1], calls[2]
	if first.Summary != "Upstream rejected an action" || first.Body != "'Meeting at 3' was rejected: message too rude" {
		t.Errorf("first notification %q / %q: want it to name the message", first.Summary, first.Body)
	}
	if second.Body != "'Lunch at 1' was rejected: message too long" {
		t.Errorf("second notification body %q", second.Body)
	}
	for _, c := range calls {
		if c.Timeout != int32(NotifyExpire/time.Millisecond) || c.Timeout <= 0 {
			t.Errorf("%q: expire_timeout %d ms, want %d (it must expire)", c.Summary, c.Timeout, NotifyExpire/time.Millisecond)
		}
		if c.App != ID {
			t.Errorf("%q: app name %q, want %q", c.Summary, c.App, ID)
		}
	}
	if first.Replaces != 0 {
		t.Errorf("the first notification replaces %d, want 0 (a new one)", first.Replaces)
	}
	if second.Replaces != first.ID {
		t.Errorf("the second rejection replaces %d, want the first's id %d: rejections must not stack", second.Replaces, first.ID)
	}
	if synced.Replaces != 0 {
		t.Errorf("the back-online notification replaces %d, want 0: another kind does not replace a rejection", synced.Replaces)
	}
}
