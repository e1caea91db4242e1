package autostart

import (
	"fmt"
	"strings"
)

// Registry is the part of a registry key a RunKey needs: on Windows the
// current user's Run key (HKCU\Software\Microsoft\Windows\CurrentVersion\Run),
// in tests a map.
type Registry interface {
	// Value returns the string value name, and whether it exists.
	Value(name string) (string, bool, error)
	SetValue(name, value string) error
	// DeleteValue removes name; a missing value is not an error.
	DeleteValue(name string) error
}

// RunKey is a value under the Windows Run key: Explorer runs its command
// line when the user logs in. It needs no administrator rights.
type RunKey struct {
	Key  Registry
	Name string   // the value's name: RunValue
	Exec []string // the command line
}

// NewRunKey returns the Run value named RunValue in key for exec.
func NewRunKey(key Registry, exec []string) *RunKey {
	return &RunKey{Key: key, Name: RunValue, Exec: exec}
}

func (s *RunKey) Where() string {
	return `HKCU\Software\Microsoft\Windows\CurrentVersion\Run\` + s.Name
}

func (s *RunKey) Enabled() bool {
	_, ok, err := s.Key.Value(s.Name)
	return err == nil && ok
}

// SetEnabled sets (on) or deletes (off) the value.
func (s *RunKey) SetEnabled(on bool) error {
	if !on {
		if err := s.Key.DeleteValue(s.Name); err != nil {
			return fmt.Errorf("remove %s: %w", s.Where(), err)
		}
		return nil
	}
	if len(s.Exec) == 0 {
		return errNoCommand
	}
	if err := s.Key.SetValue(s.Name, CommandLine(s.Exec)); err != nil {
		return fmt.Errorf("set %s: %w", s.Where(), err)
	}
	return nil
}

// CommandLine joins args into a Windows command line that
// CommandLineToArgvW (and Go's os.Args) splits back into args: the
// program is always quoted (its path may hold spaces, never quotes), the
// arguments quoted where needed, with the backslash rules for quotes.
func CommandLine(args []string) string {
	if len(args) == 0 {
		return ""
	}
	parts := []string{`"` + args[0] + `"`}
	for _, a := range args[1:] {
		parts = append(parts, escapeArg(a))
	}
	return strings.Join(parts, " ")
}

// escapeArg quotes one argument as syscall.EscapeArg does on Windows
// (which other platforms' syscall lacks): 2n backslashes before a quote
// mean n, 2n+1 mean n and a literal quote.
func escapeArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\v\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			for ; slashes > 0; slashes-- {
				b.WriteByte('\\')
			}
			b.WriteByte('\\')
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	for ; slashes > 0; slashes-- {
		b.WriteByte('\\')
	}
	b.WriteByte('"')
	return b.String()
}
