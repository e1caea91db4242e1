// Package traytest holds the end-to-end tests of the tray app: the real
// synctray binary under Xvfb and a private DBus session bus, with a fake
// StatusNotifierWatcher (the tray host) that reads the tray menu over
// com.canonical.dbusmenu and clicks its items, a fake notification server,
// screenshots of the inspector window, and the idle-memory and start-up
// benchmarks. It needs Xvfb, dbus-daemon and ImageMagick's import (Debian:
// xvfb xauth dbus imagemagick); the tests fail, not skip, without them.
package traytest
