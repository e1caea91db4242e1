// Package autostart is "Start at login" on each desktop: an XDG autostart
// desktop file on Linux and the BSDs, a LaunchAgent property list on
// macOS, and a value under the Run key of the user's registry on Windows.
// Each writes and removes only its own entry, for this user, with no
// rights beyond theirs; what they write is pure Go and tested on every
// platform, and only the Windows registry access itself is behind a build
// tag.
package autostart

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// ID names the entry: the app's reverse-DNS ID (FyneApp.toml), the
// LaunchAgent's label and the desktop file's name.
const ID = "io.github.synctray"

// RunValue is the name of the value under the Windows Run key; the NSIS
// installer writes the same one, so the installer's option and the tray's
// toggle are one setting.
const RunValue = "synctray"

// Entry is the "Start at login" setting of one platform.
type Entry interface {
	// Enabled reports whether synctray starts at login.
	Enabled() bool
	// SetEnabled adds (on) or removes (off) the entry.
	SetEnabled(on bool) error
	// Where says where the entry lives, for messages.
	Where() string
}

// New returns the entry that starts exec (a command line) at login on
// this platform, or nil where there is none.
func New(exec []string) Entry {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		return NewXDG("", exec)
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return nil
		}
		return NewLaunchAgent(filepath.Join(home, "Library", "LaunchAgents"), exec)
	case "windows":
		return newRunKey(exec)
	}
	return nil
}

// writeFile replaces path with data through a temporary file, creating
// its directory.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create autostart dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write autostart entry: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write autostart entry: %w", err)
	}
	return nil
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove autostart entry: %w", err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

var errNoCommand = errors.New("autostart: no command line")
