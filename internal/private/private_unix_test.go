//go:build !windows

package private

import (
	"os"
	"testing"
)

func openToEveryone(t *testing.T, path string) {
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
}

func TestExposedUnixSaysTheMode(t *testing.T) {
	f := t.TempDir() + "/f"
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o640); err != nil {
		t.Fatal(err)
	}
	how, fix, err := Exposed(f)
	if err != nil || how != "mode -rw-r-----" || fix != "chmod 600 it" {
		t.Errorf("Exposed = %q, %q, %v", how, fix, err)
	}
}
