package syncer_test

import (
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"synctray/internal/testsupport"
)

// The host and its sync engine speak to an upstream through
// synctray/upstream/protocol only (the protocol's types and its client):
// they must not pull in the reference upstream server (synctray/upstream)
// or its stores. Test files may (they run a reference upstream).
func TestLocalserverDoesNotImportTheUpstreamServer(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil && runtime.GOOS == "windows" {
		testsupport.Skip(t, "no Go toolchain on this Windows machine (the wine tests run prebuilt test binaries)")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "synctray/localserver/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	imports := map[string][]string{} // every dependency, with what it imports
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	for _, p := range []string{"synctray/localserver/syncer", "synctray/upstream/protocol"} {
		if _, ok := imports[p]; !ok {
			t.Fatalf("%s is not among the dependencies go list gave:\n%s", p, out)
		}
	}
	forbidden := func(p string) bool {
		return (p == "synctray/upstream" || strings.HasPrefix(p, "synctray/upstream/")) && p != "synctray/upstream/protocol"
	}
	for p, imps := range imports {
		if bad := slices.IndexFunc(imps, forbidden); bad >= 0 {
			t.Errorf("%s imports %s: use synctray/upstream/protocol", p, imps[bad])
		}
	}
}
