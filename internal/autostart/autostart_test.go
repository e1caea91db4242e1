package autostart

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var cmd = []string{"/opt/sync tray/synctray", "--data-dir=/home/me/my data & <more>", "--addr=127.0.0.1:7717"}

func TestXDGWritesAndRemovesTheDesktopFile(t *testing.T) {
	dir := t.TempDir()
	as := NewXDG(dir, cmd)
	testToggle(t, as, filepath.Join(dir, "autostart", ID+".desktop"))
	as.SetEnabled(true)
	b, _ := os.ReadFile(as.Path)
	want := `Exec="/opt/sync tray/synctray" "--data-dir=/home/me/my data & <more>" "--addr=127.0.0.1:7717"`
	if !strings.Contains(string(b), "\n"+want+"\n") || !strings.HasPrefix(string(b), "[Desktop Entry]\n") {
		t.Errorf("autostart file:\n%s\nwant a line %s", b, want)
	}
}

func TestExecLineQuoting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"/usr/bin/synctray"}, `/usr/bin/synctray`},
		{[]string{"/usr/bin/synctray", "--addr=127.0.0.1:7717"}, `/usr/bin/synctray "--addr=127.0.0.1:7717"`},
		{[]string{"/a b/synctray"}, `"/a b/synctray"`},
		{[]string{"x", `a"b$c`}, `x "a\\"b\\$c"`},
		{[]string{"x", `back\slash`}, `x "back\\\\slash"`},
		{[]string{"x", "100%"}, `x 100%%`},
	} {
		if got := ExecLine(tc.args); got != tc.want {
			t.Errorf("ExecLine(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

// plist is what launchd reads of the property list.
type plist struct {
	Dict struct {
		Items []struct {
			XMLName xml.Name
			Text    string   `xml:",chardata"`
			Strings []string `xml:"string"`
		} `xml:",any"`
	} `xml:"dict"`
}

func TestLaunchAgentPlist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Library", "LaunchAgents")
	as := NewLaunchAgent(dir, cmd)
	testToggle(t, as, filepath.Join(dir, "io.github.synctray.plist"))
	if err := as.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(as.Path)
	if err != nil {
		t.Fatal(err)
	}
	var p plist
	if err := xml.Unmarshal(b, &p); err != nil {
		t.Fatalf("the plist is not XML: %v\n%s", err, b)
	}
	// A plist dict alternates <key> and a value.
	got := map[string]string{}
	var args []string
	items := p.Dict.Items
	for i := 0; i+1 < len(items); i += 2 {
		if items[i].XMLName.Local != "key" {
			t.Fatalf("item %d is <%s>, want <key>", i, items[i].XMLName.Local)
		}
		v := items[i+1]
		got[items[i].Text] = v.XMLName.Local + ":" + strings.TrimSpace(v.Text)
		if items[i].Text == "ProgramArguments" {
			args = v.Strings
		}
	}
	for k, want := range map[string]string{
		"Label":                  "string:io.github.synctray",
		"RunAtLoad":              "true:",
		"ProcessType":            "string:Interactive",
		"LimitLoadToSessionType": "string:Aqua",
		"ProgramArguments":       "array:",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if strings.Join(args, "\x00") != strings.Join(cmd, "\x00") {
		t.Errorf("ProgramArguments = %q, want %q", args, cmd)
	}
}

// mapRegistry is a Run key in memory.
type mapRegistry map[string]string

func (m mapRegistry) Value(name string) (string, bool, error) { v, ok := m[name]; return v, ok, nil }
func (m mapRegistry) SetValue(name, value string) error       { m[name] = value; return nil }
func (m mapRegistry) DeleteValue(name string) error           { delete(m, name); return nil }

func TestRunKeyValue(t *testing.T) {
	reg := mapRegistry{"OtherApp": `"C:\other.exe"`}
	as := NewRunKey(reg, []string{`C:\Users\Me\AppData\Local\Programs\synctray\synctray.exe`, `--data-dir=C:\Users\Me\my data\`, `--addr=127.0.0.1:7717`})
	if as.Enabled() {
		t.Fatal("enabled before")
	}
	if err := as.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	want := `"C:\Users\Me\AppData\Local\Programs\synctray\synctray.exe" "--data-dir=C:\Users\Me\my data\\" --addr=127.0.0.1:7717`
	if reg["synctray"] != want || !as.Enabled() {
		t.Errorf("Run value = %s (enabled %v), want %s", reg["synctray"], as.Enabled(), want)
	}
	if err := as.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg["synctray"]; ok || as.Enabled() {
		t.Error("value still there")
	}
	if reg["OtherApp"] == "" {
		t.Error("another program's value was removed")
	}
}

func TestCommandLineQuoting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{`C:\p\s.exe`}, `"C:\p\s.exe"`},
		{[]string{`C:\p\s.exe`, "plain"}, `"C:\p\s.exe" plain`},
		{[]string{`C:\p\s.exe`, ""}, `"C:\p\s.exe" ""`},
		{[]string{`C:\p\s.exe`, `a b`}, `"C:\p\s.exe" "a b"`},
		{[]string{`C:\p\s.exe`, `say "hi"`}, `"C:\p\s.exe" "say \"hi\""`},
		{[]string{`C:\p\s.exe`, `back\slash`}, `"C:\p\s.exe" back\slash`},
		{[]string{`C:\p\s.exe`, `dir with space\`}, `"C:\p\s.exe" "dir with space\\"`},
		{[]string{`C:\p\s.exe`, `x\"y`}, `"C:\p\s.exe" "x\\\"y"`},
	} {
		if got := CommandLine(tc.args); got != tc.want {
			t.Errorf("CommandLine(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

func testToggle(t *testing.T, as Entry, path string) {
	t.Helper()
	if as.Enabled() {
		t.Fatal("enabled before")
	}
	if err := as.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if !as.Enabled() || as.Where() != path {
		t.Fatalf("after SetEnabled(true): enabled %v at %s, want %s", as.Enabled(), as.Where(), path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if err := as.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) || as.Enabled() {
		t.Fatalf("after SetEnabled(false): %v, enabled %v", err, as.Enabled())
	}
	if err := as.SetEnabled(false); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}
