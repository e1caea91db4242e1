package autostart

import (
	"encoding/xml"
	"path/filepath"
	"strings"
)

// LaunchAgent is a launchd property list in ~/Library/LaunchAgents, which
// macOS loads at the user's next login (RunAtLoad) in the GUI session
// (Aqua). Removing the file stops it for the next login; synctray does not
// call launchctl, so enabling it starts nothing now.
type LaunchAgent struct {
	Path string   // ~/Library/LaunchAgents/io.github.synctray.plist
	Exec []string // the command line: the binary inside the .app, then flags
}

// NewLaunchAgent returns the launch agent for exec in dir
// (~/Library/LaunchAgents).
func NewLaunchAgent(dir string, exec []string) *LaunchAgent {
	return &LaunchAgent{Path: filepath.Join(dir, ID+".plist"), Exec: exec}
}

func (s *LaunchAgent) Where() string { return s.Path }
func (s *LaunchAgent) Enabled() bool { return exists(s.Path) }

// SetEnabled writes (on) or removes (off) the property list.
func (s *LaunchAgent) SetEnabled(on bool) error {
	if !on {
		return removeFile(s.Path)
	}
	if len(s.Exec) == 0 {
		return errNoCommand
	}
	return writeFile(s.Path, []byte(s.Plist()))
}

// Plist is the property list's content.
func (s *LaunchAgent) Plist() string {
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString("<plist version=\"1.0\">\n<dict>\n")
	b.WriteString("\t<key>Label</key>\n\t<string>" + escape(ID) + "</string>\n")
	b.WriteString("\t<key>ProgramArguments</key>\n\t<array>\n")
	for _, a := range s.Exec {
		b.WriteString("\t\t<string>" + escape(a) + "</string>\n")
	}
	b.WriteString("\t</array>\n")
	b.WriteString("\t<key>RunAtLoad</key>\n\t<true/>\n")
	b.WriteString("\t<key>ProcessType</key>\n\t<string>Interactive</string>\n")
	b.WriteString("\t<key>LimitLoadToSessionType</key>\n\t<string>Aqua</string>\n")
	b.WriteString("</dict>\n</plist>\n")
	return b.String()
}

func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) //nolint:errcheck // a strings.Builder does not fail
	return b.String()
}
