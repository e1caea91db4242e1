package app

import (
	"time"

	"fyne.io/fyne/v2"
)

// NotifyExpire is how long a desktop notification stays on screen when the
// desktop lets the sender choose (org.freedesktop.Notifications): long
// enough to read, short enough that a day of syncing does not pile up.
const NotifyExpire = 10 * time.Second

// fyneNotify shows notifications through fyne.App.SendNotification: it
// neither replaces nor expires them (Fyne sends expire_timeout 0), so it
// is the fallback where DesktopNotifications has nothing better.
func fyneNotify(fa fyne.App) func(Notification) {
	return func(n Notification) { fa.SendNotification(fyne.NewNotification(n.Title, n.Body)) }
}
