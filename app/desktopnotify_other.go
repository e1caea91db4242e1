//go:build !(linux || freebsd || openbsd || netbsd)

package app

import (
	"log/slog"

	"fyne.io/fyne/v2"
)

// DesktopNotifications returns how the tray app shows desktop
// notifications, and what to call at exit: here fyne's SendNotification.
func DesktopNotifications(fa fyne.App, log *slog.Logger) (notify func(Notification), closeFn func()) {
	return fyneNotify(fa), func() {}
}
