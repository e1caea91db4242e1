package traytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"synctray/internal/testsupport"
)

// binary is the synctray binary, built once in TestMain.
var binary string

func TestMain(m *testing.M) {
	testsupport.MainWithBinary(m, "synctray", &binary, func() {
		stopXvfb()
		if prefillDir != "" {
			os.RemoveAll(prefillDir)
		}
	})
}

// need fails the test when a tool is missing: these tests run for real in CI.
func need(t testing.TB, tools ...string) {
	t.Helper()
	pkgs := map[string]string{"Xvfb": "xvfb", "dbus-daemon": "dbus", "import": "imagemagick"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the tray tests need it (Debian package %s; `make deps` installs it)", tool, pkgs[tool])
		}
	}
}

// The X server is shared by the package's tests.
var (
	xvfbMu   sync.Mutex
	xvfbCmd  *exec.Cmd
	xDisplay string
)

// display starts Xvfb once (on a free display number it picks itself) and
// returns its DISPLAY.
func display(t testing.TB) string {
	t.Helper()
	need(t, "Xvfb")
	xvfbMu.Lock()
	defer xvfbMu.Unlock()
	if xvfbCmd != nil {
		return xDisplay
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if _, err := strconv.Atoi(n); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("Xvfb did not start: %q\n%s", n, stderr.String())
		}
		xvfbCmd, xDisplay = cmd, ":"+n
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("Xvfb did not start within 15 s\n%s", stderr.String())
	}
	return xDisplay
}

func stopXvfb() {
	xvfbMu.Lock()
	defer xvfbMu.Unlock()
	if xvfbCmd != nil {
		xvfbCmd.Process.Signal(syscall.SIGTERM)
		xvfbCmd.Wait()
		xvfbCmd = nil
	}
}

// sessionBus starts a private DBus session bus for one test and returns its address.
func sessionBus(t testing.TB) string {
	t.Helper()
	need(t, "dbus-daemon")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard // "Failed to set fd limit" when not allowed to raise it: harmless
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, out)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return addr
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon did not start within 10 s")
	}
	return ""
}

// env is the environment of a synctray process: a home of its own, the
// given DISPLAY and session bus ("" leaves them out), English.
func env(home, display, bus string, extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "DISPLAY", k == "WAYLAND_DISPLAY", k == "DBUS_SESSION_BUS_ADDRESS", k == "XDG_RUNTIME_DIR",
			k == "HOME", k == "XDG_CONFIG_HOME", k == "XDG_CACHE_HOME", k == "XDG_DATA_HOME", k == "LANG", k == "LC_ALL",
			strings.HasPrefix(k, "SYNCTRAY_"):
			continue
		}
		out = append(out, kv)
	}
	runtime := filepath.Join(home, "run")
	os.MkdirAll(runtime, 0o700)
	out = append(out, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR="+runtime, "LANG=en_US.UTF-8")
	if display != "" {
		out = append(out, "DISPLAY="+display)
	}
	if bus != "" {
		out = append(out, "DBUS_SESSION_BUS_ADDRESS="+bus)
	}
	return append(out, extra...)
}

// proc is a running synctray.
type proc struct {
	cmd  *exec.Cmd
	log  *testsupport.SyncBuffer
	done chan struct{}
	base string
	dir  string
}

// start runs synctray with its data dir and address added to args.
func start(t testing.TB, environ []string, dataDir, addr string, args ...string) *proc {
	t.Helper()
	args = append(args, "--data-dir", dataDir, "--addr", addr)
	cmd := exec.Command(binary, args...)
	cmd.Env = environ
	p := &proc{cmd: cmd, log: &testsupport.SyncBuffer{}, done: make(chan struct{}), base: "http://" + addr, dir: dataDir}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start synctray: %v", err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("synctray %v output:\n%s", args, p.log.String())
		}
	})
	return p
}

// waitHealthy waits for /healthz and returns how long it took from the start.
func (p *proc) waitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("synctray exited during start-up: %v\n%s", p.cmd.ProcessState, p.log.String())
		default:
		}
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("synctray did not answer /healthz within 20 s")
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("synctray did not stop within 15 s of SIGTERM\n%s", p.log.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("synctray exited %d after SIGTERM, want 0\n%s", code, p.log.String())
	}
	if out := p.log.String(); strings.Contains(out, "panic:") || strings.Contains(out, "fatal error:") {
		t.Fatalf("synctray panicked:\n%s", out)
	}
}

func (p *proc) token(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// api calls the host's JSON API with the token; it returns the status code.
func (p *proc) api(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+p.token(t))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type status struct {
	Online      bool           `json:"online"`
	WorkOffline bool           `json:"work_offline"`
	Counts      map[string]int `json:"counts"`
}

func (p *proc) status(t testing.TB) status {
	t.Helper()
	var st status
	if code := p.api(t, "GET", "/api/status", nil, &st); code != 200 {
		t.Fatalf("GET /api/status: %d", code)
	}
	return st
}

// enqueue adds n message actions through the API.
func (p *proc) enqueue(t testing.TB, n int, text string) {
	t.Helper()
	var actions []map[string]any
	for i := range n {
		actions = append(actions, map[string]any{"key": testsupport.NewKey(), "type": "message", "payload": map[string]string{"text": fmt.Sprintf("%s %d", text, i+1)}})
	}
	var res struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	if code := p.api(t, "POST", "/api/actions/batch", map[string]any{"actions": actions}, &res); code != 200 || len(res.Results) != n {
		t.Fatalf("enqueue: %d %+v", code, res)
	}
}

// artifacts is where screenshots go (.gitignore'd).
func artifacts(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
