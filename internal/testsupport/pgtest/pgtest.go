// Package pgtest gives tests PostgreSQL databases: a private cluster,
// started once per test binary in a temporary directory and stopped when
// it ends (however it ends), or the server that SYNCTRAY_TEST_PG_DSN
// names. Each test gets its own database. Only tests import it.
//
// Without PostgreSQL binaries the tests that ask for a database are
// skipped, unless SYNCTRAY_REQUIRE_POSTGRES=1 (CI) makes that a failure.
// The binaries are found in SYNCTRAY_PG_BINDIR, on PATH, or in Debian's
// /usr/lib/postgresql/N/bin.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres says that no PostgreSQL binaries were found.
var ErrNoPostgres = errors.New("PostgreSQL is not installed (no initdb and pg_ctl found)")

// Environment variables read by the package.
const (
	EnvDSN     = "SYNCTRAY_TEST_PG_DSN"      // an existing server to use (a superuser's DSN)
	EnvRequire = "SYNCTRAY_REQUIRE_POSTGRES" // "1": fail rather than skip without PostgreSQL
	EnvBinDir  = "SYNCTRAY_PG_BINDIR"        // where initdb and pg_ctl are
)

// Start starts a private cluster: initdb in a new temporary directory
// (as the postgres user when run as root), then pg_ctl start on a free
// loopback port with the socket in that directory and fsync on. It
// returns the DSN of the cluster's superuser on its postgres database
// (with a password made for the run) and stop, which stops the cluster
// (pg_ctl stop -m fast) and removes the directory. A watchdog process does
// the same when this process ends without calling stop (a panic, a
// kill).
func Start() (dsn string, stop func() error, err error) {
	bin, err := binDir()
	if err != nil {
		return "", nil, err
	}
	root, err := os.MkdirTemp("", "synctray-pg-")
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %w", err)
	}
	fail := func(err error) (string, func() error, error) {
		os.RemoveAll(root)
		return "", nil, fmt.Errorf("pgtest: %w", err)
	}
	data, sock, pwFile := filepath.Join(root, "data"), filepath.Join(root, "sock"), filepath.Join(root, "pw")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return fail(err)
	}
	pw := make([]byte, 16)
	rand.Read(pw)
	password := hex.EncodeToString(pw)
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	cred, err := credential(root)
	if err != nil {
		return fail(err)
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = procAttr(cred, false)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		return nil
	}
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile="+pwFile,
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return fail(err)
	}

	// The watchdog holds the read end of a pipe whose write end only this
	// process has: it reads EOF when stop closes it or this process ends,
	// then stops the cluster and removes the directory.
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	logFile := filepath.Join(root, "postgres.log")
	watchdog := exec.Command("/bin/sh", "-c", `read _ignored; "$1" stop -D "$2" -m fast -w -t 60 >/dev/null 2>&1; rc=$?; rm -rf "$3"; exit $rc`,
		"pgtest-watchdog", filepath.Join(bin, "pg_ctl"), data, root)
	watchdog.Stdin = r
	// Its own process group: a ^C to the test run must not stop it
	// before it has stopped the cluster.
	watchdog.SysProcAttr = procAttr(cred, true)
	if err := watchdog.Start(); err != nil {
		r.Close()
		w.Close()
		return fail(fmt.Errorf("start watchdog: %w", err))
	}
	r.Close()
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			w.Close()
			done := make(chan error, 1)
			go func() { done <- watchdog.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					stopErr = fmt.Errorf("pgtest: stop cluster: %w", err)
				}
			case <-time.After(90 * time.Second):
				stopErr = errors.New("pgtest: the cluster did not stop in 90s")
			}
		})
		return stopErr
	}

	var port int
	for attempt := 0; ; attempt++ {
		if port, err = freePort(); err != nil {
			stop()
			return "", nil, fmt.Errorf("pgtest: %w", err)
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on", port, sock)
		err = run("pg_ctl", "-D", data, "-l", logFile, "-w", "-t", "60", "-o", opts, "start")
		if err == nil {
			break
		}
		if attempt == 2 { // a port taken between freePort and start, three times: something else
			log, _ := os.ReadFile(logFile)
			stop()
			return "", nil, fmt.Errorf("pgtest: %w\npostgres.log:\n%s", err, log)
		}
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	return u.String(), stop, nil
}

// binDir finds the directory with initdb and pg_ctl.
func binDir() (string, error) {
	has := func(dir string) bool {
		for _, n := range []string{"initdb", "pg_ctl"} {
			if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(EnvBinDir); d != "" {
		if has(d) {
			return d, nil
		}
		return "", fmt.Errorf("%w: not in %s=%s", ErrNoPostgres, EnvBinDir, d)
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	if runtime.GOOS == "windows" {
		// Not the Unix places (under wine they are the Linux host's
		// files, which a Windows program cannot run).
		return "", ErrNoPostgres
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { // newest version first
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range append(dirs, "/usr/local/pgsql/bin") {
		if has(d) {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// The cluster shared by the tests of this binary.
var shared struct {
	once    sync.Once
	dsn     string
	stop    func() error
	err     error
	managed bool // started here, not SYNCTRAY_TEST_PG_DSN
	n       atomic.Int64
}

func sharedCluster() (string, error) {
	shared.once.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			shared.dsn = dsn
			return
		}
		shared.dsn, shared.stop, shared.err = Start()
		shared.managed = shared.err == nil
	})
	return shared.dsn, shared.err
}

// Main runs the tests, then stops the shared cluster if one was started:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Without it (or Stop) the watchdog stops the cluster when the test
// binary ends.
func Main(m *testing.M) int {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Stop stops the shared cluster if this binary started one, for a
// TestMain that cannot use Main (it runs m.Run itself); call it after
// the tests.
func Stop() error {
	if !shared.managed {
		return nil
	}
	return shared.stop()
}

// DB creates a new, empty database for tb on the shared cluster (started
// on first use) and returns its DSN; the database is dropped when tb
// ends. Without PostgreSQL it skips tb (fails it with
// SYNCTRAY_REQUIRE_POSTGRES=1).
func DB(tb testing.TB) string {
	tb.Helper()
	admin, err := sharedCluster()
	if errors.Is(err, ErrNoPostgres) && os.Getenv(EnvRequire) != "1" {
		tb.Skipf("%v: install postgresql, set %s, or point %s at a server; %s=1 makes this a failure", err, EnvBinDir, EnvDSN, EnvRequire)
	}
	if err != nil {
		tb.Fatal(err)
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), shared.n.Add(1))
	if err := adminExec(admin, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		if err := adminExec(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return WithDatabase(admin, name)
}

// WithDatabase returns dsn naming database name instead.
func WithDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	return dsn + " dbname=" + name
}

func adminExec(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}
