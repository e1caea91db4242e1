package traytest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"synctray/app/icons"
)

// watcher is a fake tray host on a private session bus: it owns
// org.kde.StatusNotifierWatcher, so the app's StatusNotifierItem registers
// with it, and org.freedesktop.Notifications, so desktop notifications are
// seen. It reads the item's menu (com.canonical.dbusmenu at
// /StatusNotifierMenu) and clicks its items, as a panel would.
type watcher struct {
	conn  *dbus.Conn
	items chan string // bus names of registered items

	mu    sync.Mutex
	notes []note
}

type note struct {
	App, Summary, Body string
	Replaces           uint32 // replaces_id
	Timeout            int32  // expire_timeout, ms (0: never, -1: the server's default)
}

// watcherIface is exported on /StatusNotifierWatcher.
type watcherIface struct{ w *watcher }

// RegisterStatusNotifierItem is what an item calls; fyne's systray passes
// its object path, so the item is the caller's bus name.
func (x watcherIface) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	name := service
	if strings.HasPrefix(service, "/") || service == "" {
		name = string(sender)
	}
	select {
	case x.w.items <- name:
	default:
	}
	return nil
}

func (x watcherIface) RegisterStatusNotifierHost(service string) *dbus.Error { return nil }

// notifyIface is exported on /org/freedesktop/Notifications.
type notifyIface struct{ w *watcher }

func (x notifyIface) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	x.w.mu.Lock()
	defer x.w.mu.Unlock()
	x.w.notes = append(x.w.notes, note{app, summary, body, replaces, timeout})
	if replaces != 0 {
		return replaces, nil // the spec: replacing keeps the id
	}
	return uint32(len(x.w.notes)), nil
}

func (x notifyIface) GetCapabilities() ([]string, *dbus.Error) { return []string{"body"}, nil }

func (x notifyIface) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "traytest", "synctray", "1", "1.2", nil
}

func (x notifyIface) CloseNotification(id uint32) *dbus.Error { return nil }

func newWatcher(t testing.TB, busAddr string) *watcher {
	t.Helper()
	conn, err := dbus.Connect(busAddr)
	if err != nil {
		t.Fatalf("connect to the test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &watcher{conn: conn, items: make(chan string, 8)}
	if err := conn.Export(watcherIface{w}, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Export(notifyIface{w}, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"org.kde.StatusNotifierWatcher", "org.freedesktop.Notifications"} {
		reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
		if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
			t.Fatalf("own %s: %v (reply %v)", name, err, reply)
		}
	}
	return w
}

// item waits for a StatusNotifierItem to register and returns its bus name.
func (w *watcher) item(t testing.TB) string {
	t.Helper()
	select {
	case name := <-w.items:
		return name
	case <-time.After(15 * time.Second):
		t.Fatal("no StatusNotifierItem registered within 15 s")
	}
	return ""
}

// menuItem is one entry of a dbusmenu layout.
type menuItem struct {
	ID      int32
	Label   string
	Type    string // "separator" or ""
	Checked bool   // toggle-state 1
	Enabled bool
}

func (m menuItem) String() string {
	switch {
	case m.Type == "separator":
		return "---"
	case m.Checked:
		return m.Label + " [x]"
	case !m.Enabled:
		return m.Label + " (disabled)"
	}
	return m.Label
}

// menu reads the item's menu (GetLayout of the root, all levels).
func (w *watcher) menu(t testing.TB, item string) []menuItem {
	t.Helper()
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	err := w.conn.Object(item, "/StatusNotifierMenu").
		Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root)
	if err != nil {
		t.Fatalf("GetLayout: %v", err)
	}
	var out []menuItem
	for _, c := range root.Children {
		out = append(out, parseMenuItem(c.Value()))
	}
	return out
}

func parseMenuItem(v any) menuItem {
	var it menuItem
	fields, ok := v.([]any) // a (ia{sv}av) struct
	if !ok || len(fields) < 2 {
		return it
	}
	it.ID, _ = fields[0].(int32)
	props, _ := fields[1].(map[string]dbus.Variant)
	it.Enabled = true
	for k, p := range props {
		switch k {
		case "label":
			it.Label, _ = p.Value().(string)
		case "type":
			it.Type, _ = p.Value().(string)
		case "toggle-state":
			n, _ := p.Value().(int32)
			it.Checked = n == 1
		case "enabled":
			it.Enabled, _ = p.Value().(bool)
		case "visible":
			if vis, _ := p.Value().(bool); !vis {
				it.Label = "(hidden) " + it.Label
			}
		}
	}
	return it
}

func labels(items []menuItem) string {
	var s []string
	for _, it := range items {
		s = append(s, it.String())
	}
	return strings.Join(s, " | ")
}

// click sends the "clicked" event to the menu item with this label (or label prefix + "*").
// The menu may be in the middle of a rebuild (a check mark changed): it
// waits for the item to be there.
func (w *watcher) click(t testing.TB, item, label string) {
	t.Helper()
	var items []menuItem
	deadline := time.Now().Add(5 * time.Second)
	for {
		items = w.menu(t, item)
		if slices.ContainsFunc(items, func(it menuItem) bool { return matches(it.Label, label) }) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, it := range items {
		if matches(it.Label, label) {
			call := w.conn.Object(item, "/StatusNotifierMenu").
				Call("com.canonical.dbusmenu.Event", 0, it.ID, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
			if call.Err != nil {
				t.Fatalf("click %q: %v", label, call.Err)
			}
			return
		}
	}
	t.Fatalf("no menu item %q in %s", label, labels(items))
}

func matches(got, want string) bool {
	return got == want || strings.HasSuffix(want, "*") && strings.HasPrefix(got, strings.TrimSuffix(want, "*"))
}

// iconColour is the colour of the tray icon's tile (the pixel
// icons.TraySample of the 64×64 IconPixmap, ARGB), which tells the state
// apart.
func (w *watcher) iconColour(t testing.TB, item string) string {
	t.Helper()
	v, err := w.conn.Object(item, "/StatusNotifierItem").GetProperty("org.kde.StatusNotifierItem.IconPixmap")
	if err != nil {
		t.Fatalf("IconPixmap: %v", err)
	}
	var px []struct {
		W, H int32
		Pix  []byte
	}
	if err := dbus.Store([]any{v.Value()}, &px); err != nil || len(px) == 0 {
		t.Fatalf("IconPixmap %v: %v", v, err)
	}
	p := px[0]
	const n = icons.TraySize
	if p.W != n || p.H != n || len(p.Pix) != n*n*4 {
		return fmt.Sprintf("%dx%d", p.W, p.H)
	}
	i := (icons.TraySample.Y*n + icons.TraySample.X) * 4
	return fmt.Sprintf("#%02x%02x%02x", p.Pix[i+1], p.Pix[i+2], p.Pix[i+3])
}

func (w *watcher) notifications() []note {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]note(nil), w.notes...)
}
