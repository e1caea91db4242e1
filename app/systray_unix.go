//go:build linux || freebsd || openbsd || netbsd

package app

import (
	"slices"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/systray"
)

// SystemTray returns the system tray for a Fyne app. On Linux and the BSDs
// it is an SNITray: the same StatusNotifierItem over DBus (fyne.io/systray)
// that fyne's desktop.App uses, without the hidden window that fyne makes
// for it, whose OpenGL context alone costs ~70 MB of resident memory
// (Mesa, LLVM) while the app sits idle in the tray.
func SystemTray(fa fyne.App) Tray { return NewSNITray("synctray") }

// SNITray is a Tray on a StatusNotifierItem (KDE/freedesktop tray
// protocol) with a com.canonical.dbusmenu menu. Menu updates change the
// items in place (labels, enabled), so a status line that changes every
// second does not rebuild the menu; the menu is rebuilt when items come,
// go or change their check mark. Clicks run the item's action on the UI
// thread.
type SNITray struct {
	title string

	mu      sync.Mutex
	started bool
	end     func()
	items   []*systray.MenuItem // nil for separators
	labels  []string
	shape   []string
}

var _ Tray = (*SNITray)(nil)

// NewSNITray returns a tray that appears when a menu is first set.
func NewSNITray(title string) *SNITray { return &SNITray{title: title} }

// SetSystemTrayIcon sets the icon (a PNG).
func (t *SNITray) SetSystemTrayIcon(r fyne.Resource) { systray.SetIcon(r.Content()) }

// SetSystemTrayMenu shows m, registering the tray item the first time.
func (t *SNITray) SetSystemTrayMenu(m *fyne.Menu) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started {
		t.started = true
		start, end := systray.RunWithExternalLoop(func() {
			systray.SetTitle(t.title) // some XDG trays crash without a title (fyne #3678)
			systray.SetTooltip(t.title)
		}, func() {})
		t.end = end
		start()
	}
	t.showLocked(m)
}

// RefreshMenu shows the current state of m's items.
func (t *SNITray) RefreshMenu(m *fyne.Menu) { t.SetSystemTrayMenu(m) }

// Close removes the tray item from the bus.
func (t *SNITray) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.end != nil {
		defer func() { recover() }() // fyne.io/systray panics if it never reached the bus
		end := t.end
		t.end = nil
		end()
	}
}

func (t *SNITray) showLocked(m *fyne.Menu) {
	shape := make([]string, len(m.Items))
	for i, it := range m.Items {
		switch {
		case it.IsSeparator:
			shape[i] = "---"
		case it.Checked:
			shape[i] = "checked"
		default:
			shape[i] = "item"
		}
	}
	if !slices.Equal(shape, t.shape) {
		systray.ResetMenu() // closes the old items' click channels
		t.items, t.labels, t.shape = make([]*systray.MenuItem, len(m.Items)), make([]string, len(m.Items)), shape
		for i, it := range m.Items {
			if it.IsSeparator {
				systray.AddSeparator()
				continue
			}
			var si *systray.MenuItem
			if it.Checked {
				si = systray.AddMenuItemCheckbox(it.Label, "", true)
			} else {
				si = systray.AddMenuItem(it.Label, "")
			}
			if it.Disabled {
				si.Disable()
			}
			t.items[i], t.labels[i] = si, it.Label
			go func() {
				for range si.ClickedCh {
					if it.Action != nil && !it.Disabled {
						fyne.Do(it.Action)
					}
				}
			}()
		}
		return
	}
	for i, it := range m.Items {
		si := t.items[i]
		if si == nil {
			continue
		}
		if t.labels[i] != it.Label {
			t.labels[i] = it.Label
			si.SetTitle(it.Label)
		}
		if si.Disabled() != it.Disabled {
			if it.Disabled {
				si.Disable()
			} else {
				si.Enable()
			}
		}
	}
}
