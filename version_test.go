package main

import (
	"os"
	"strings"
	"testing"

	"synctray/app"
)

// The binary's version is FyneApp.toml's, the one place it is written.
func TestTheVersionComesFromFyneAppToml(t *testing.T) {
	b, err := os.ReadFile("FyneApp.toml")
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "Version" {
			want = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	if want == "" {
		t.Fatal("no Version in FyneApp.toml")
	}
	if app.Version != want {
		t.Errorf("app.Version = %q, want FyneApp.toml's %q", app.Version, want)
	}
}
