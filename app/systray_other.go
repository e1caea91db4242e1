//go:build !(linux || freebsd || openbsd || netbsd)

package app

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
)

// SystemTray returns the system tray for a Fyne app: fyne's own
// (desktop.App) on macOS and Windows; nil where there is none.
func SystemTray(fa fyne.App) Tray {
	if d, ok := fa.(desktop.App); ok {
		return d
	}
	return nil
}
