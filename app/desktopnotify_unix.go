//go:build linux || freebsd || openbsd || netbsd

package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"github.com/godbus/dbus/v5"
)

// DesktopNotifications returns how the tray app shows desktop
// notifications, and what to call at exit. Here it is
// org.freedesktop.Notifications on the session bus, with an expiry
// (NotifyExpire) and replacing the previous notification of the same
// kind; when the session bus cannot be reached, fyne's SendNotification.
func DesktopNotifications(fa fyne.App, log *slog.Logger) (notify func(Notification), closeFn func()) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		log.Info("desktop notifications through Fyne: cannot reach the session bus", "err", err)
		return fyneNotify(fa), func() {}
	}
	d := NewDBusNotifier(conn, ID, iconFile(log))
	return func(n Notification) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := d.Notify(ctx, n); err != nil {
				log.Warn("desktop notification", "kind", n.Kind, "title", n.Title, "err", err)
			}
		}, func() {
			if err := conn.Close(); err != nil {
				log.Debug("close the notifications' bus connection", "err", err)
			}
		}
}

// iconFile writes the application icon where the notification server can
// read it and returns its path; "" (no icon) if it cannot.
func iconFile(log *slog.Logger) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		log.Debug("no icon for notifications", "err", err)
		return ""
	}
	path := filepath.Join(dir, "synctray", "notification-icon.png")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		log.Debug("no icon for notifications", "err", err)
		return ""
	}
	if err := os.WriteFile(path, AppIcon.Content(), 0o600); err != nil {
		log.Debug("no icon for notifications", "err", err)
		return ""
	}
	return path
}

// DBusNotifier sends notifications over org.freedesktop.Notifications.
// Each notification expires after NotifyExpire and replaces the last one
// of its kind (replaces_id), so a burst of rejections is one notification
// on screen, updated, not a stack.
type DBusNotifier struct {
	obj  dbus.BusObject
	app  string
	icon string

	mu  sync.Mutex // held during Notify: the id of a kind is known before its next one is sent
	ids map[string]uint32
}

// NewDBusNotifier sends notifications on conn as appName, with an icon
// (a file path or an icon name; "" for none).
func NewDBusNotifier(conn *dbus.Conn, appName, icon string) *DBusNotifier {
	return &DBusNotifier{obj: conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications"),
		app: appName, icon: icon, ids: map[string]uint32{}}
}

// Notify shows n, replacing the last notification of n.Kind.
func (d *DBusNotifier) Notify(ctx context.Context, n Notification) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	hints := map[string]dbus.Variant{"desktop-entry": dbus.MakeVariant(d.app)}
	var id uint32
	err := d.obj.CallWithContext(ctx, "org.freedesktop.Notifications.Notify", 0,
		d.app, d.ids[n.Kind], d.icon, n.Title, n.Body, []string{}, hints, int32(NotifyExpire/time.Millisecond)).Store(&id)
	if err != nil {
		return fmt.Errorf("org.freedesktop.Notifications.Notify %q: %w", n.Title, err)
	}
	d.ids[n.Kind] = id
	return nil
}
