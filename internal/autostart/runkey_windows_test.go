//go:build windows

package autostart

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/windows"
)

// TestRunKeyInTheRegistry writes the real HKCU Run key (under a value name
// of its own, so it does not touch an installed synctray's), reads it back,
// and checks that Windows splits the command line back into the args.
func TestRunKeyInTheRegistry(t *testing.T) {
	args := []string{`C:\Program Files\x\synctray.exe`, `--data-dir=C:\my data\`, `say "hi"`, "plain"}
	as := NewRunKey(CurrentUserRun{}, args)
	as.Name = fmt.Sprintf("synctray-test-%d", os.Getpid())
	t.Cleanup(func() { as.SetEnabled(false) })
	testToggleRegistry(t, as)
	if err := as.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	v, ok, err := CurrentUserRun{}.Value(as.Name)
	if err != nil || !ok {
		t.Fatalf("value: %q %v %v", v, ok, err)
	}
	got, err := windows.DecomposeCommandLine(v)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", args) {
		t.Errorf("Windows splits %s into %q, want %q", v, got, args)
	}
}

func testToggleRegistry(t *testing.T, as *RunKey) {
	if as.Enabled() {
		t.Fatal("enabled before")
	}
	if err := as.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if !as.Enabled() {
		t.Fatal("not enabled after SetEnabled(true)")
	}
	if err := as.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if as.Enabled() {
		t.Fatal("enabled after SetEnabled(false)")
	}
}
