package app

import (
	"embed"
	"runtime"

	"fyne.io/fyne/v2"
)

//go:embed icons/*.png
var iconFiles embed.FS

func mustIcon(name string) fyne.Resource {
	b, err := iconFiles.ReadFile("icons/" + name)
	if err != nil {
		panic(err)
	}
	return fyne.NewStaticResource(name, b)
}

// Icons of the tray, one per state, and the application icon; drawn by
// package icons (app/icons), which derives them all from one mark.
var (
	trayIcons = map[IconState]fyne.Resource{
		IconSynced:  mustIcon("synced.png"),
		IconQueued:  mustIcon("queued.png"),
		IconOffline: mustIcon("offline.png"),
		IconError:   mustIcon("error.png"),
	}
	// AppIcon is the application icon (FyneApp.toml points at the same file).
	AppIcon = mustIcon("icon.png")
)

// TrayIcon returns the tray icon for a state.
func TrayIcon(s IconState) fyne.Resource { return trayIcons[s] }

// Labels of the tray menu.
const (
	LabelOpen        = "Open synctray"
	LabelOutbox      = "Outbox…"
	LabelSyncNow     = "Sync now"
	LabelWorkOffline = "Work offline"
	LabelStartLogin  = "Start at login"
	LabelQuit        = "Quit"
	labelStarting    = "synctray is starting…"
)

// trayMenu is the tray's menu. Its items are made once; updates change
// their labels and checks and call Menu.Refresh (setting a new menu does
// not refresh on every platform, fyne issue 2860).
type trayMenu struct {
	tray    Tray
	menu    *fyne.Menu
	status  *fyne.MenuItem
	offline *fyne.MenuItem
	login   *fyne.MenuItem
	icon    IconState
}

func newTrayMenu(a *App, t Tray) *trayMenu {
	m := &trayMenu{tray: t, icon: -1}
	m.status = &fyne.MenuItem{Label: labelStarting, Disabled: true}
	m.offline = fyne.NewMenuItem(LabelWorkOffline, func() { a.setWorkOffline(!a.snapshot().status.WorkOffline) })
	if a.o.Autostart != nil {
		m.login = fyne.NewMenuItem(LabelStartLogin, func() { a.setAutostart(!a.snapshot().autostart) })
	} else {
		m.login = &fyne.MenuItem{Label: LabelStartLogin + " (not supported on " + runtime.GOOS + " yet)", Disabled: true}
	}
	quit := fyne.NewMenuItem(LabelQuit, a.quit)
	quit.IsQuit = true
	m.menu = fyne.NewMenu("synctray",
		m.status,
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem(LabelOpen, a.openBrowser),
		fyne.NewMenuItem(LabelOutbox, a.ShowInspector),
		fyne.NewMenuItem(LabelSyncNow, a.syncNow),
		m.offline,
		m.login,
		fyne.NewMenuItemSeparator(),
		quit,
	)
	return m
}

// install hands the menu and the first icon to the tray.
func (m *trayMenu) install() {
	m.tray.SetSystemTrayMenu(m.menu)
	m.setIcon(IconSynced)
}

func (m *trayMenu) setIcon(s IconState) {
	if s != m.icon {
		m.icon = s
		m.tray.SetSystemTrayIcon(TrayIcon(s))
	}
}

// update shows the view-model in the menu and the icon; it refreshes the
// menu only when something in it changed. It runs on the UI thread.
func (m *trayMenu) update(vm viewModel) {
	if !vm.haveStatus {
		return
	}
	line, icon := StatusLine(vm.status)
	changed := false
	if m.status.Label != line {
		m.status.Label, changed = line, true
	}
	if m.offline.Checked != vm.status.WorkOffline {
		m.offline.Checked, changed = vm.status.WorkOffline, true
	}
	if !m.login.Disabled && m.login.Checked != vm.autostart {
		m.login.Checked, changed = vm.autostart, true
	}
	if changed {
		if r, ok := m.tray.(interface{ RefreshMenu(*fyne.Menu) }); ok {
			r.RefreshMenu(m.menu)
		} else {
			m.menu.Refresh() // fyne's tray: see fyne issue 2860
		}
	}
	m.setIcon(icon)
}
