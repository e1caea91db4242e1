package autostart

import (
	"os"
	"path/filepath"
	"strings"
)

// XDG is an XDG autostart desktop file (freedesktop.org Desktop
// Application Autostart Specification), which Linux and BSD desktops run
// at login.
type XDG struct {
	Path string   // the .desktop file, in $XDG_CONFIG_HOME/autostart
	Exec []string // the command line that starts synctray
}

// NewXDG returns the autostart file for exec. configDir is
// $XDG_CONFIG_HOME; "": the environment's, else ~/.config.
func NewXDG(configDir string, exec []string) *XDG {
	if configDir == "" {
		configDir = os.Getenv("XDG_CONFIG_HOME")
	}
	if configDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		configDir = filepath.Join(home, ".config")
	}
	return &XDG{Path: filepath.Join(configDir, "autostart", ID+".desktop"), Exec: exec}
}

func (s *XDG) Where() string { return s.Path }
func (s *XDG) Enabled() bool { return exists(s.Path) }

// SetEnabled writes (on) or removes (off) the autostart file.
func (s *XDG) SetEnabled(on bool) error {
	if !on {
		return removeFile(s.Path)
	}
	if len(s.Exec) == 0 {
		return errNoCommand
	}
	return writeFile(s.Path, []byte(s.DesktopFile()))
}

// DesktopFile is the content of the autostart file.
func (s *XDG) DesktopFile() string {
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
