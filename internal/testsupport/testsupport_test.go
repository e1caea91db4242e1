package testsupport

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr = %q (%v), want 127.0.0.1:port", addr, err)
	}
	if p, _ := strconv.Atoi(port); p < 20000 || p >= 32000 {
		t.Fatalf("port %s is not below the ephemeral range (20000-31999)", port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the free address: %v", err)
	}
	ln.Close()
}

func TestNewKey(t *testing.T) {
	a, b := NewKey(), NewKey()
	if a == b {
		t.Fatalf("two keys are the same: %s", a)
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 7 {
		t.Fatalf("key %q: version %v, %v; want a UUIDv7", a, u.Version(), err)
	}
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	WaitFor(t, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond ran %d times, want 3", n)
	}
}

func TestBuildBinary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil && runtime.GOOS == "windows" {
		Skip(t, "no Go toolchain on this Windows machine (the wine tests run prebuilt test binaries)")
	}
	bin, cleanup, err := BuildBinary("synctray/internal/testsupport/testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o100 == 0 || filepath.Base(bin) != "hello" {
		t.Fatalf("binary %s: %v, %v", bin, fi, err)
	}
	cleanup()
	if _, err := os.Stat(filepath.Dir(bin)); !os.IsNotExist(err) {
		t.Fatalf("cleanup left %s: %v", filepath.Dir(bin), err)
	}

	if _, _, err := BuildBinary("synctray/no/such/package"); err == nil || !strings.Contains(err.Error(), "no/such/package") {
		t.Fatalf("building a missing package: %v, want an error naming it", err)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Fatalf("%d bytes, want 800", got)
	}
}

func TestDamagePage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, make([]byte, 3*4096), 0o600); err != nil {
		t.Fatal(err)
	}
	DamagePage(t, path, 2)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 3*4096 {
		t.Fatalf("size %d, want the file's own", len(b))
	}
	zero := make([]byte, 4096)
	if !bytes.Equal(b[:4096], zero) || !bytes.Equal(b[8192:], zero) {
		t.Fatal("DamagePage changed a page other than page 2")
	}
	if !bytes.Equal(b[4096:8192], bytes.Repeat([]byte("\xff\x00\x13\x37"), 1024)) {
		t.Fatal("page 2 is not overwritten with junk")
	}
}
