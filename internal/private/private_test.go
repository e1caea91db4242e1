package private

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRestrictThenExposedSaysPrivate(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "data")
	if err := MkdirAll(sub); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(sub, "token")
	if err := os.WriteFile(f, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sub, f} {
		if err := Restrict(p); err != nil {
			t.Fatal(err)
		}
		how, _, err := Exposed(p)
		if err != nil {
			t.Fatal(err)
		}
		if how != "" {
			t.Errorf("%s after Restrict: exposed (%s)", p, how)
		}
	}
}

func TestExposedNamesOthersAndRestrictFixesIt(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	openToEveryone(t, f)
	how, fix, err := Exposed(f)
	if err != nil {
		t.Fatal(err)
	}
	if how == "" || fix == "" {
		t.Fatalf("a file open to everyone: Exposed = %q, %q; want how and a fix", how, fix)
	}
	t.Logf("exposed: %s; fix: %s", how, fix)
	if err := Restrict(f); err != nil {
		t.Fatal(err)
	}
	if how, _, err := Exposed(f); err != nil || how != "" {
		t.Errorf("after Restrict: Exposed = %q, %v; want private", how, err)
	}
	if b, err := os.ReadFile(f); err != nil || string(b) != "secret" {
		t.Errorf("the owner can no longer read it: %q, %v", b, err)
	}
}

func TestExposedMissingFile(t *testing.T) {
	if _, _, err := Exposed(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Exposed of a missing file: no error")
	}
}
