package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Autostart is the "Start at login" entry: an XDG autostart desktop file
// (freedesktop.org Desktop Application Autostart Specification), which
// Linux and BSD desktops run at login. macOS (a launch agent) and Windows
// (the Run registry key) are not supported yet.
type Autostart struct {
	Path string   // the .desktop file, in $XDG_CONFIG_HOME/autostart
	Exec []string // the command line that starts synctray
}

// NewAutostart returns the autostart entry for exec, or nil where it is
// not supported. configDir is $XDG_CONFIG_HOME; "": the environment's,
// else ~/.config.
func NewAutostart(configDir string, exec []string) *Autostart {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
	default:
		return nil
	}
	if configDir == "" {
		configDir = os.Getenv("XDG_CONFIG_HOME")
	}
	if configDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil
		}
		configDir = filepath.Join(home, ".config")
	}
	return &Autostart{Path: filepath.Join(configDir, "autostart", ID+".desktop"), Exec: exec}
}

// Enabled reports whether the autostart file exists.
func (s *Autostart) Enabled() bool {
	_, err := os.Stat(s.Path)
	return err == nil
}

// SetEnabled writes (on) or removes (off) the autostart file.
func (s *Autostart) SetEnabled(on bool) error {
	if !on {
		if err := os.Remove(s.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove autostart entry: %w", err)
		}
		return nil
	}
	if len(s.Exec) == 0 {
		return errors.New("autostart: no command line")
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return fmt.Errorf("create autostart dir: %w", err)
	}
	tmp := s.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.desktopFile()), 0o644); err != nil {
		return fmt.Errorf("write autostart entry: %w", err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write autostart entry: %w", err)
	}
	return nil
}

func (s *Autostart) desktopFile() string {
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=synctray\n" +
		"Comment=Keeps your actions safe while the connection comes and goes\n" +
		"Exec=" + ExecLine(s.Exec) + "\n" +
		"Icon=" + ID + "\n" +
		"Terminal=false\n" +
		"X-GNOME-Autostart-enabled=true\n"
}

// ExecLine quotes a command line for the Exec key of a desktop file:
// arguments with reserved characters are double-quoted with `"`, "`", `$`
// and `\` escaped, `%` is doubled, and then backslashes are escaped once
// more as the key's string value requires.
func ExecLine(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, "%", "%%")
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\><~|&;$*?#()`=") {
			var b strings.Builder
			b.WriteByte('"')
			for _, r := range a {
				if strings.ContainsRune("\"`$\\", r) {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
			b.WriteByte('"')
			a = b.String()
		}
		quoted[i] = a
	}
	return strings.ReplaceAll(strings.Join(quoted, " "), `\`, `\\`)
}
