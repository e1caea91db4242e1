package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/idemserver"
	"synctray/internal/testsupport/pgtest"
	"synctray/internal/testsupport/testupstream"
	"synctray/localserver/outboxdb"
	"synctray/upstream"
	"synctray/upstream/pgstore"
)

// binary is the synctray binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	testsupport.MainWithBinary(m, "synctray", &binary, func() {
		if err := pgtest.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	})
}

// proc is the synctray binary running as a subprocess.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, logf *os.File, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start synctray: %v", err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	return p
}

// hostLog is a file for a host's output in the test's temporary
// directory, closed when the test ends.
func hostLog(t testing.TB) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "host.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func waitHealthy(t testing.TB, base string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("synctray exited during start-up: %v", p.cmd.ProcessState)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("synctray did not become healthy within 20 s")
}

func readToken(t testing.TB, dir string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "api-token"))
		if err == nil && len(bytes.TrimSpace(b)) >= 32 {
			return string(bytes.TrimSpace(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no api-token: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCrashRecovery kills the real host with SIGKILL at random moments
// while clients enqueue and the engine syncs, restarts it each time, and
// checks that the upstream ends up with every acknowledged action exactly
// once and that both databases are intact.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode only")
	}
	// A little latency keeps batches in flight, so kills land mid-sync.
	_, upStore, upURL := testupstream.Start(t, upstream.Options{Faults: upstream.Faults{Latency: 2 * time.Millisecond}})
	crashRecovery(t, upStore, []string{"--upstream", upURL}, "crash test", "crashtest.txt")
}

// TestCrashRecoveryPostgres is TestCrashRecovery against a real `synctray
// upstream` process whose store is in PostgreSQL (--db-file), with a
// token.
func TestCrashRecoveryPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode only")
	}
	dsn := pgtest.DB(t)
	tokFile := writeSecret(t, "upstream-token", testsupport.NewKey())
	logf := logFile(t, "upstream.log")
	up := startUpstreamProc(t, logf, testsupport.FreeAddr(t), "--db-file", writeSecret(t, "dsn", dsn),
		"--token-file", tokFile, "--latency", "2ms")
	upStore, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer upStore.Close()
	crashRecovery(t, upStore, []string{"--upstream", up.url(), "--upstream-token-file", tokFile}, "crash test (PostgreSQL upstream)", "crashtest-postgres.txt")
	up.stop(t)
}

// crashRecovery is the crash test of protocol v1 against the upstream at
// hostArgs (--upstream and its token) whose store is upStore: 2,000
// actions, at least 20 SIGKILLs of the host (crashStorm); the figures go
// to artifacts/artifact.
func crashRecovery(t *testing.T, upStore upstream.Store, hostArgs []string, label, artifact string) {
	const n = 2000
	st := crashStorm(t, n, append([]string{"serve"}, append(hostArgs, "--batch-size", "40", "--log-level", "warn")...), func(base, k string) *http.Request {
		req, _ := http.NewRequest("POST", base+"/api/actions", strings.NewReader(`{"type":"message","payload":{"k":"`+k+`"}}`))
		req.Header.Set("Idempotency-Key", k)
		return req
	})
	dir, acked, kills, retries, elapsed := st.dir, st.acked, st.kills, st.retries, st.elapsed

	applied, err := upStore.AppliedKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != n {
		t.Errorf("upstream applied %d keys, want exactly %d", len(applied), n)
	}
	slices.Sort(applied)
	for _, k := range acked {
		if _, ok := slices.BinarySearch(applied, k); !ok {
			t.Errorf("acknowledged key %s never reached the upstream", k)
		}
	}
	if len(acked) != n {
		t.Errorf("%d enqueues acknowledged, want %d", len(acked), n)
	}
	if err := upStore.IntegrityCheck(context.Background()); err != nil {
		t.Errorf("upstream integrity: %v", err)
	}
	db, err := outboxdb.Open(filepath.Join(dir, "outbox.db"), outboxdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.IntegrityCheck(context.Background()); err != nil {
		t.Errorf("outbox integrity: %v", err)
	}
	stats, _ := upStore.Stats(context.Background())
	figures := fmt.Sprintf("%s: %d actions, %d SIGKILLs, %d client retries, %v to drain; upstream applied %d keys (%d duplicates answered); integrity ok\n",
		label, n, kills, retries, elapsed.Round(time.Millisecond), stats.Applied, stats.Duplicates)
	t.Log(figures)
	writeArtifact(t, artifact, figures)
}

// writeArtifact writes figures to artifacts/name.
func writeArtifact(t *testing.T, name, figures string) {
	if err := os.MkdirAll("artifacts", 0o755); err == nil {
		if err := os.WriteFile(filepath.Join("artifacts", name), []byte(figures), 0o644); err != nil {
			t.Log(err)
		}
	}
}

// writeSecret writes content to a new file of mode 0600 and returns its path.
func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// logFile creates a log file for a subprocess, closed when the test ends.
func logFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// upstreamProc is a real `synctray upstream` process on a fixed address,
// so that it can be killed and started again where its clients expect it.
type upstreamProc struct {
	addr string
	args []string
	logf *os.File
	p    *proc
}

// startUpstreamProc starts `synctray upstream args… --addr addr` (with a
// data dir of its own) and waits until its /healthz answers 200, which
// says that its database does.
func startUpstreamProc(t *testing.T, logf *os.File, addr string, args ...string) *upstreamProc {
	t.Helper()
	u := &upstreamProc{addr: addr, logf: logf,
		args: append([]string{"upstream", "--addr", addr, "--data-dir", t.TempDir(), "--log-level", "warn"}, args...)}
	u.start(t)
	return u
}

func (u *upstreamProc) url() string { return "http://" + u.addr }

func (u *upstreamProc) start(t *testing.T) {
	t.Helper()
	u.p = startProc(t, u.logf, u.args...)
	waitHealthy(t, u.url(), u.p)
}

// kill kills it with SIGKILL and waits until it is gone.
func (u *upstreamProc) kill() {
	u.p.cmd.Process.Kill()
	<-u.p.done
}

// stop stops it as an init system would (SIGTERM) and checks that it
// shut down cleanly.
func (u *upstreamProc) stop(t *testing.T) {
	t.Helper()
	u.p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-u.p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream did not stop within 30 s of SIGTERM")
	}
	if !u.p.cmd.ProcessState.Success() {
		t.Errorf("upstream exit after SIGTERM: %v", u.p.cmd.ProcessState)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestCLI drives a running host through the outbox subcommands.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	addr := testsupport.FreeAddr(t)
	logf := hostLog(t)
	p := startProc(t, logf, "serve", "--data-dir", dir, "--addr", addr, "--work-offline", "--log-level", "warn")
	waitHealthy(t, "http://"+addr, p)
	token := readToken(t, dir)

	post := func(payload string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/actions", strings.NewReader(`{"type":"message","payload":`+payload+`}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Idempotency-Key", testsupport.NewKey())
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("enqueue: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	post(`{"text":"one"}`)
	post(`{"text":"two"}`)

	run := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append(args, "--data-dir", dir, "--addr", addr)...)
		cmd.Env = append(os.Environ(), "SYNCTRAY_LOG_LEVEL=warn")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != wantCode {
			t.Fatalf("synctray %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}

	var page struct {
		Actions []struct {
			ID    int64  `json:"id"`
			State string `json:"state"`
		} `json:"actions"`
	}
	if err := json.Unmarshal([]byte(run(0, "outbox", "list", "--json")), &page); err != nil || len(page.Actions) != 2 {
		t.Fatalf("list --json: %v %+v", err, page)
	}
	if out := run(0, "outbox", "list"); !strings.Contains(out, "queued") || !strings.Contains(out, "STATE") {
		t.Fatalf("list table:\n%s", out)
	}
	if out := run(0, "outbox", "show", fmt.Sprint(page.Actions[0].ID)); !strings.Contains(out, `"text": "two"`) || !strings.Contains(out, "(new) → queued") {
		t.Fatalf("show:\n%s", out)
	}
	if out := run(0, "outbox", "cancel", fmt.Sprint(page.Actions[0].ID)); !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel:\n%s", out)
	}
	if out := run(0, "outbox", "sync"); !strings.Contains(out, "synced 1") {
		t.Fatalf("sync:\n%s", out)
	}
	if out := run(1, "outbox", "cancel", fmt.Sprint(page.Actions[1].ID)); !strings.Contains(out, "already reached the upstream") {
		t.Fatalf("cancel synced:\n%s", out)
	}
	if out := run(0, "outbox", "status"); !strings.Contains(out, "working offline") || !strings.Contains(out, "synced 1") {
		t.Fatalf("status:\n%s", out)
	}
	if out := run(2, "outbox", "explode"); !strings.Contains(out, "unknown command") {
		t.Fatalf("unknown command:\n%s", out)
	}
	if out := run(0, "open", "--print"); !strings.Contains(out, "/login?token=") {
		t.Fatalf("open --print:\n%s", out)
	}
	if out := run(0, "outbox", "--help"); !strings.Contains(out, "cancel-queued") {
		t.Fatalf("--help:\n%s", out)
	}

	// A second host on the same port says clearly why it cannot start.
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--addr", addr, "--upstream", "http://127.0.0.1:1")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "already running") {
		t.Fatalf("second host: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

// TestOneHostPerDataDir runs two real hosts on one data dir: the second
// must fail at once, naming the first; and a refused outbox is started over
// only with --reset-outbox.
func TestOneHostPerDataDir(t *testing.T) {
	dir := t.TempDir()
	addr := testsupport.FreeAddr(t)
	logf := hostLog(t)
	p := startProc(t, logf, "serve", "--data-dir", dir, "--addr", addr, "--upstream", "http://127.0.0.1:1", "--log-level", "warn")
	waitHealthy(t, "http://"+addr, p)

	// run starts another serve; one that does not fail is killed after 20 s.
	run := func(args ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append([]string{"serve", "--data-dir", dir, "--addr", testsupport.FreeAddr(t), "--upstream", "http://127.0.0.1:1", "--log-level", "warn"}, args...)...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := run()
	want := fmt.Sprintf("data dir %s is in use by synctray (pid %d, http://%s)", dir, p.cmd.Process.Pid, addr)
	if code != 1 || !strings.Contains(out, want) {
		t.Fatalf("second serve: exit %d\n%s\nwant exit 1 saying %q", code, out, want)
	}

	// Stop the first; empty its outbox, as `truncate -s 0` would.
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if err := os.Truncate(filepath.Join(dir, "outbox.db"), 0); err != nil {
		t.Fatal(err)
	}
	if code, out := run(); code != 1 || !strings.Contains(out, filepath.Join(dir, "outbox.db")+" is empty") || !strings.Contains(out, "--reset-outbox") {
		t.Fatalf("serve on an emptied outbox: exit %d\n%s\nwant a refusal naming the file and --reset-outbox", code, out)
	}
	addr = testsupport.FreeAddr(t)
	p = startProc(t, logf, "serve", "--data-dir", dir, "--addr", addr, "--upstream", "http://127.0.0.1:1", "--log-level", "warn", "--reset-outbox")
	waitHealthy(t, "http://"+addr, p)
	if baks, _ := filepath.Glob(filepath.Join(dir, "outbox.db.bak-*")); len(baks) != 1 {
		t.Fatalf("after --reset-outbox: backups %v, want the emptied outbox moved aside", baks)
	}
}

// TestCrashRecoveryHTTPMode is the crash test in HTTP mode: writes go to
// /upstream/ and are replayed to an idempotent REST backend; the host is
// killed with SIGKILL at least 20 times while it replays them. The
// backend replays its stored answer to a repeated key, so "applied once"
// holds whatever the host sends; what the host answers for is checked
// too: it sends a key again after a delivered 2xx only when a kill came
// between that answer and its record.
func TestCrashRecoveryHTTPMode(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode only")
	}
	const n = 2000
	backend := idemserver.Start(t)
	backend.SetLatency(time.Millisecond) // keeps writes in flight, so kills land mid-replay
	st := crashStorm(t, n, []string{"serve", "--upstream", backend.URL, "--upstream-protocol", "http", "--log-level", "warn"}, func(base, k string) *http.Request {
		req, _ := http.NewRequest("POST", base+"/upstream/todos", strings.NewReader(`{"title":"`+k+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", k)
		req.Header.Set("Prefer", "respond-async")
		return req
	})
	dir, acked, kills, retries, elapsed := st.dir, st.acked, st.kills, st.retries, st.elapsed

	counts := backend.CountByKey()
	if len(counts) != n {
		t.Errorf("backend applied %d keys, want exactly %d", len(counts), n)
	}
	for _, k := range acked {
		if counts[k] != 1 {
			t.Errorf("acknowledged key %s applied %d times, want once", k, counts[k])
		}
	}
	if len(acked) != n {
		t.Errorf("%d writes acknowledged, want %d", len(acked), n)
	}
	// A key sent again after its 2xx was delivered is legitimate only
	// when the host was killed before it recorded that answer; then it
	// comes back as queued and is sent once more. What one kill can
	// leave unrecorded, from the host's in-flight limits (one in flight:
	// no --upstream-concurrency; syncer.NewHTTP then claims at most
	// BatchSize = 64 writes not answered): the drain claims only while
	// fewer than 64 answered outcomes wait for the recorder's commit, and
	// at most 64 minus those it has claimed and not answered
	// (pipeline.go), so answered-but-unrecorded plus claimed-but-not-
	// answered stays under 2×64. A kill thus leaves at most 127 writes
	// whose 2xx may have been delivered and not recorded (the recorder's
	// group plus the one request in flight). A host that ignored its
	// records (say, requeued synced writes at start) would resend every
	// write synced so far after each restart: thousands over 20 kills.
	const perKill = 2 * 64
	again := backend.SentAfterDelivered()
	if again > kills*perKill {
		t.Errorf("%d requests for a key after its 2xx had been delivered, want at most %d (%d per SIGKILL × %d)", again, kills*perKill, perKill, kills)
	}
	db, err := outboxdb.Open(filepath.Join(dir, "outbox.db"), outboxdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.IntegrityCheck(context.Background()); err != nil {
		t.Errorf("outbox integrity: %v", err)
	}
	figures := fmt.Sprintf("crash test (http mode): %d writes, %d SIGKILLs, %d client retries, %v to drain; backend applied %d keys once each, got %d requests, %d of them for a key after its 2xx was delivered (at most %d allowed: %d per SIGKILL); integrity ok\n",
		n, kills, retries, elapsed.Round(time.Millisecond), len(counts), backend.Requests(), again, kills*perKill, perKill)
	t.Log(figures)
	writeArtifact(t, "crashtest-http.txt", figures)
}

func TestVersionPrintsTheVersionAndTheCommit(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(binary, arg).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "synctray ") || !strings.Contains(string(out), " (commit ") {
			t.Fatalf("synctray %s: %v\n%s\nwant synctray VERSION (commit …)", arg, err, out)
		}
	}
}

func TestServeOnAPortOfAnotherProgramDoesNotBlameSynctray(t *testing.T) {
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--addr", strings.TrimPrefix(other.URL, "http://"), "--upstream", "http://127.0.0.1:1")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "is taken by another program") || strings.Contains(string(out), "already running") {
		t.Fatalf("serve on a taken port: exit %d\n%s\nwant exit 1 saying another program holds it", cmd.ProcessState.ExitCode(), out)
	}
}

// storm is what crashStorm did.
type storm struct {
	dir     string   // the host's data dir
	acked   []string // keys the host acknowledged (2xx)
	kills   int
	retries int64
	elapsed time.Duration
}

// crashStorm runs the real host (args, plus its own --data-dir and
// --addr) while 8 clients write n new keys with write(base, key) — each
// retried until the host answers 2xx, as the service worker does — kills
// it with SIGKILL at random moments, at least 20 times and until the
// clients are done, restarting it each time, then lets it drain and stops
// it with SIGTERM.
func crashStorm(t *testing.T, n int, args []string, write func(base, key string) *http.Request) storm {
	t.Helper()
	const (
		minKills = 20
		clients  = 8
	)
	st := storm{dir: t.TempDir()}
	addr := testsupport.FreeAddr(t)
	base := "http://" + addr
	logf := hostLog(t)
	args = append(append([]string(nil), args...), "--data-dir", st.dir, "--addr", addr)
	p := startProc(t, logf, args...)
	waitHealthy(t, base, p)
	token := readToken(t, st.dir)

	var mu sync.Mutex
	keys := make(chan string, n)
	for i := 0; i < n; i++ {
		keys <- testsupport.NewKey()
	}
	close(keys)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second}
	for c := 0; c < clients; c++ {
		wg.Go(func() {
			for k := range keys {
				for ctx.Err() == nil {
					req := write(base, k)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := hc.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode/100 == 2 {
							mu.Lock()
							st.acked = append(st.acked, k)
							mu.Unlock()
							break
						}
					}
					mu.Lock()
					st.retries++
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	enqueued := make(chan struct{})
	go func() { wg.Wait(); close(enqueued) }()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for st.kills < minKills || !isClosed(enqueued) {
		if ctx.Err() != nil {
			t.Fatalf("time out after %d kills", st.kills)
		}
		time.Sleep(time.Duration(20+rng.IntN(200)) * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		st.kills++
		p = startProc(t, logf, args...)
		waitHealthy(t, base, p)
	}

	for {
		if ctx.Err() != nil {
			t.Fatal("timed out waiting for the outbox to drain")
		}
		var status struct {
			Counts map[string]int `json:"counts"`
		}
		req, _ := http.NewRequest("GET", base+"/api/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := hc.Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&status)
			resp.Body.Close()
			if status.Counts["synced"] == n && status.Counts["queued"] == 0 && status.Counts["syncing"] == 0 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	st.elapsed = time.Since(start)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("host did not stop on SIGTERM")
	}
	if !p.cmd.ProcessState.Success() {
		t.Errorf("host exit after SIGTERM: %v", p.cmd.ProcessState)
	}
	return st
}
