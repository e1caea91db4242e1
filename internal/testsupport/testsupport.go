// Package testsupport holds the helpers the tests of several packages
// share: free ports, idempotency keys, polling with a deadline, building the
// real binary once, a log buffer and a few file helpers.
//
// It is a normal package so that tests in any package can import it, but
// only tests import it: no production code may.
package testsupport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"synctray/internal/private"
)

// FreeAddr picks a free loopback address ("127.0.0.1:port") for a server
// the test starts later. It picks below the kernel's ephemeral range (32768
// and up on Linux), so that no port-0 listener or outgoing connection (the
// built-in upstream of the process it is for, or anything else) takes it
// before the server listens on it. Another test picking at random may still
// take it; a caller that restarts a server on the address should retry with
// a new one when it is taken.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	tb.Fatal("no free port in 20000-31999")
	return ""
}

// NewKey returns a new idempotency key (a UUIDv7).
func NewKey() string { return uuid.Must(uuid.NewV7()).String() }

// WaitDeadline is how long WaitFor polls before it fails the test. It bounds
// a wait for something that should happen, not how fast it happens: it is
// long so that a slow machine does not fail a test.
const WaitDeadline = 15 * time.Second

// WaitFor polls cond every few milliseconds until it holds; it fails the test
// ("timed out waiting for <what>") after WaitDeadline.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(WaitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BuildBinary builds the main package pkg (an import path such as
// "synctray") into a new temporary directory, for a TestMain to build the
// real binary once for all of its package's tests. It returns the binary's
// path and a cleanup that removes the directory. It returns an error rather
// than failing a test, as TestMain has none; the error includes the output
// of go build.
func BuildBinary(pkg string) (bin string, cleanup func(), err error) {
	name := path.Base(pkg)
	dir, err := os.MkdirTemp("", name+"-test")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build %s: %v\n%s", pkg, err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// MainWithBinary is a whole TestMain for tests of a binary: it builds pkg
// with BuildBinary, sets *bin to its path, runs the tests, runs after (if not
// nil), removes the binary and exits with the tests' code. It exits 1 when
// the build fails.
func MainWithBinary(m *testing.M, pkg string, bin *string, after func()) {
	p, cleanup, err := BuildBinary(pkg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = p
	code := m.Run()
	if after != nil {
		after()
	}
	cleanup()
	os.Exit(code)
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: a process's or a
// logger's output that a test reads while it is written.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger returns a logger that writes warnings and errors to the test's
// output.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Perm returns the permission bits of the file at path.
func Perm(tb testing.TB, path string) os.FileMode {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Mode().Perm()
}

// DamagePage overwrites page (counted from 1) of the SQLite file at path,
// with the default 4,096-byte pages, with junk. It fails the test when the
// file does not reach that page.
func DamagePage(tb testing.TB, path string, page int) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	if fi.Size() < int64(page)*4096 {
		tb.Fatalf("%s has %d bytes: too small to damage page %d", path, fi.Size(), page)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("\xff\x00\x13\x37", 1024)), int64(page-1)*4096); err != nil {
		tb.Fatal(err)
	}
}

// LeftmostLeaf is the page (counted from 1) of the SQLite file at path
// that holds the first rows of the b-tree whose root is page root (a
// table's or an index's rootpage in sqlite_schema): the leaf reached by
// following every first child. The file must be checkpointed (no newer
// copy of those pages in its WAL).
func LeftmostLeaf(tb testing.TB, path string, root int) int {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(data) < 100 {
		tb.Fatalf("%s has %d bytes: not a SQLite database", path, len(data))
	}
	pageSize := int(binary.BigEndian.Uint16(data[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	page := root
	for range 32 { // no b-tree is that deep
		start := (page - 1) * pageSize
		if page < 1 || start+pageSize > len(data) {
			tb.Fatalf("%s: page %d is not in the file", path, page)
		}
		hdr := start
		if page == 1 {
			hdr += 100 // the file header
		}
		switch data[hdr] {
		case 0x0a, 0x0d: // index leaf, table leaf
			return page
		case 0x02, 0x05: // index interior, table interior
			if binary.BigEndian.Uint16(data[hdr+3:]) == 0 { // no cells: only the right-most child
				page = int(binary.BigEndian.Uint32(data[hdr+8:]))
				continue
			}
			cell := start + int(binary.BigEndian.Uint16(data[hdr+12:])) // the first cell starts with its left child
			page = int(binary.BigEndian.Uint32(data[cell:]))
		default:
			tb.Fatalf("%s: page %d is not a b-tree page (type %#x)", path, page, data[hdr])
		}
	}
	tb.Fatalf("%s: b-tree at page %d is too deep", path, root)
	return 0
}

// CheckPrivate fails the test unless only this user can reach path: mode
// 0600 (a file) or 0700 (a directory) on Unix; on Windows an ACL that
// allows no other account (internal/private). Wine keeps no ACLs (it
// accepts one and forgets it): there it only logs.
func CheckPrivate(tb testing.TB, path string) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		how, _, err := private.Exposed(path)
		switch {
		case err != nil:
			tb.Errorf("%s: %v", path, err)
		case how != "" && UnderWine():
			fmt.Fprintf(tb.Output(), "%s: %s (wine keeps no ACLs: not checked here)\n", filepath.Base(path), how)
		case how != "":
			tb.Errorf("%s is not private: %s", path, how)
		}
		return
	}
	want := os.FileMode(0o600)
	if fi.IsDir() {
		want = 0o700
	}
	if m := fi.Mode().Perm(); m != want {
		tb.Errorf("%s: mode %v, want %v", filepath.Base(path), m, want)
	}
}

// UnixModes skips a test of Unix file modes on Windows, where modes do not
// exist and the ACL that replaces them is tested in internal/private.
func UnixModes(tb testing.TB) {
	tb.Helper()
	if runtime.GOOS == "windows" {
		Skip(tb, "file modes are Unix's; the Windows ACL is tested in internal/private")
	}
}

// Skip skips the test, saying why in its output without a file:line
// prefix, so that the wine harness (packaging/crosstests_test.go) can
// tell it from a check that failed when wine then fails the test's
// cleanup.
func Skip(tb testing.TB, reason string) {
	tb.Helper()
	fmt.Fprintln(tb.Output(), "skipped: "+reason)
	tb.SkipNow()
}

// OddName is a file name with characters that break naive URL or DSN
// building: '?', '#', '%' and a space; on Windows, which refuses '?' in
// names, '#', '%', '&' and a space.
func OddName(base string) string {
	if runtime.GOOS == "windows" {
		return base + " #frag%20&x"
	}
	return base + "?x=1#frag%20"
}

// Get sends GET url (with the bearer token unless it is "") and returns
// the status code and the body.
func Get(tb testing.TB, url, token string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
