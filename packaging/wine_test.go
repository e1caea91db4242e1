package packaging

// Wine smoke tests of the Windows build (bin/synctray.exe) and of its
// installer (bin/synctray-setup.exe, packaging/windows/synctray.nsi).
//
// They test artifacts, they do not build them: `make installer` first
// (or `make test-wine`, which does both). Without the artifacts or wine
// they skip, unless SYNCTRAY_REQUIRE_PACKAGES=1 (CI), where they fail.
// Each test gets a fresh 64-bit WINEPREFIX under t.TempDir() made by
// packaging/windows/wine-env.sh, with the test-only stand-in
// bcryptprimitives.dll that Debian 12's wine 8 lacks.
//
// Wine's exit codes are not trusted: every step checks the files, the
// registry or the answers it should have made. Figures go to t.Logf and to
// artifacts/wine-smoke.txt.

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
)

const (
	wineUninstKey = `HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\synctray`
	wineRunKey    = `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`
)

// wineRepo is the repository root (go test runs in packaging/).
func wineRepo(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// wineArtifact is the path of bin/NAME, or skips when it is missing.
func wineArtifact(t *testing.T, name, how string) string {
	t.Helper()
	p := filepath.Join(wineRepo(t), "bin", name)
	if _, err := os.Stat(p); err != nil {
		cannot(t, "bin/%s not found: build it with %s", name, how)
	}
	return p
}

func wineTools(t *testing.T) {
	t.Helper()
	for _, c := range []string{"wine", "wineboot", "wineserver", "x86_64-w64-mingw32-gcc"} {
		if _, err := exec.LookPath(c); err != nil {
			cannot(t, "%s not found: apt-get install wine wine64 gcc-mingw-w64-x86-64", c)
		}
	}
}

// wineAppVersion is Version from FyneApp.toml.
func wineAppVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wineRepo(t), "FyneApp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Version *= *"(.*)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no Version in FyneApp.toml")
	}
	return string(m[1])
}

// wineSummary collects the figures of every test for artifacts/wine-smoke.txt.
var wineSummary struct {
	sync.Mutex
	lines []string
}

// wineFigure logs a figure and adds it to artifacts/wine-smoke.txt (the
// file is rewritten after each test, so it is whole whatever ran).
func wineFigure(t *testing.T, format string, a ...any) {
	t.Helper()
	line := fmt.Sprintf("%s: %s", t.Name(), fmt.Sprintf(format, a...))
	t.Log(line)
	wineSummary.Lock()
	wineSummary.lines = append(wineSummary.lines, line)
	wineSummary.Unlock()
}

func wineWriteSummary(t *testing.T) {
	wineSummary.Lock()
	defer wineSummary.Unlock()
	dir := filepath.Join(wineRepo(t), "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Log(err)
		return
	}
	out, _ := exec.Command("wine", "--version").Output()
	text := "wine smoke tests (packaging/wine_test.go), " + time.Now().UTC().Format(time.RFC3339) +
		", " + strings.TrimSpace(string(out)) + "\n" + strings.Join(wineSummary.lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "wine-smoke.txt"), []byte(text), 0o644); err != nil {
		t.Log(err)
	}
}

func wineFileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func wineMB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// winePrefix is a fresh WINEPREFIX of one test.
type winePrefix struct {
	dir  string   // the prefix (Unix path)
	user string   // the Windows user name: drive_c/users/<user>
	env  []string // the environment of every wine call
}

// wineNewPrefix makes a prefix with packaging/windows/wine-env.sh and
// kills its wineserver (and every program in it) at cleanup.
func wineNewPrefix(t *testing.T) *winePrefix {
	t.Helper()
	wineTools(t)
	p := &winePrefix{dir: filepath.Join(t.TempDir(), "prefix")}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "SYNCTRAY_"), strings.HasPrefix(name, "WINE"),
			name == "DISPLAY", name == "WAYLAND_DISPLAY":
			// Not for the programs under test: no flags from our
			// environment, and no display (everything here is headless).
		default:
			env = append(env, kv)
		}
	}
	p.env = append(env, "WINEPREFIX="+p.dir, "WINEARCH=win64", "WINEDEBUG=-all",
		// No .desktop files in the real $HOME for the shortcuts made here.
		"WINEDLLOVERRIDES=winemenubuilder.exe=d")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(wineRepo(t), "packaging/windows/wine-env.sh"), p.dir)
	// WINE_ENV_PERSIST=1: the prefix's wineserver (and the services
	// wineboot starts) last until kill, with no stdio of ours. A server
	// that a later wine call started would keep that call's output pipes
	// open while any program runs in the prefix (WaitDelay bounds that).
	cmd.Env = append(p.env, "WINE_ENV_PERSIST=1")
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	t.Cleanup(func() { p.kill(t) })
	if err != nil || strings.TrimSpace(string(out)) != p.dir {
		t.Fatalf("wine-env.sh %s: %v, stdout %q\n%s", p.dir, err, out, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(p.dir, "drive_c/windows/system32/bcryptprimitives.dll")); err != nil {
		t.Fatalf("wine-env.sh made no stand-in DLL: %v\n%s", err, stderr.String())
	}
	entries, err := os.ReadDir(filepath.Join(p.dir, "drive_c/users"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "Public" {
			p.user = e.Name()
		}
	}
	if p.user == "" {
		t.Fatalf("no user directory in %s/drive_c/users", p.dir)
	}
	wineFigure(t, "fresh prefix (wine-env.sh: wineboot -i + stand-in DLL) %.1f s", took.Seconds())
	return p
}

// kill stops the prefix's wineserver and every program in it.
func (p *winePrefix) kill(t *testing.T) {
	for _, arg := range []string{"-k", "-w"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "wineserver", arg)
		cmd.Env = p.env
		cmd.Run() // -k fails when no server runs: fine
		cancel()
	}
}

// path is the Unix path of a path under drive_c/users/<user>/.
func (p *winePrefix) path(rel string) string {
	return filepath.Join(p.dir, "drive_c/users", p.user, filepath.FromSlash(rel))
}

// winPath is the Windows path of the same.
func (p *winePrefix) winPath(rel string) string {
	return `C:\users\` + p.user + `\` + strings.ReplaceAll(rel, "/", `\`)
}

// wine runs `wine args...` to the end (at most timeout) and returns its
// stdout and stderr; wine's exit code is returned but not to be trusted.
func (p *winePrefix) wine(t *testing.T, timeout time.Duration, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wine", args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	cmd.WaitDelay = 5 * time.Second // pipes kept open by a wineserver: see wineNewPrefix
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("wine %s: timed out after %v", strings.Join(args, " "), timeout)
	}
	return o.String(), e.String(), err
}

// regQuery returns the values of key as wine's reg.exe lists them (name
// to data; REG_DWORD data as 0x...), and whether the key exists.
func (p *winePrefix) regQuery(t *testing.T, key string) (map[string]string, bool) {
	t.Helper()
	out, _, err := p.wine(t, time.Minute, "reg", "query", key)
	if strings.Contains(err2str(err), "timed out") {
		t.Fatal(err)
	}
	vals := map[string]string{}
	found := false
	for _, line := range strings.Split(strings.ReplaceAll(out, "\r", ""), "\n") {
		if strings.EqualFold(strings.TrimSpace(line), strings.Replace(key, "HKCU", "HKEY_CURRENT_USER", 1)) {
			found = true
			continue
		}
		f := strings.SplitN(strings.TrimSpace(line), "    ", 3)
		if found && len(f) == 3 && strings.HasPrefix(f[1], "REG_") {
			vals[f[0]] = f[2]
		}
	}
	return vals, found
}

func err2str(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// wineServe is `synctray.exe serve` running under wine.
type wineServe struct {
	exe  string
	addr string
	cmd  *exec.Cmd
	out  *testsupport.SyncBuffer
	done chan struct{}
	err  error
}

// startServe starts `exe serve --addr addr` with the default data dir.
// The process is killed at cleanup if the test did not stop it.
func (p *winePrefix) startServe(t *testing.T, exe, addr string) *wineServe {
	t.Helper()
	s := &wineServe{exe: exe, addr: addr, out: &testsupport.SyncBuffer{}, done: make(chan struct{})}
	// Bounded like every wine call: no test runs that long.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	s.cmd = exec.CommandContext(ctx, "wine", exe, "serve", "--addr", addr)
	s.cmd.Env = p.env
	s.cmd.Dir = p.dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.WaitDelay = 5 * time.Second // pipes kept open by a wineserver: see wineNewPrefix
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); cancel(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// wineIsGUI reports whether exe is a GUI-subsystem build (what `fyne
// package` makes) rather than a console one.
func wineIsGUI(t *testing.T, exe string) bool {
	t.Helper()
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("%s is not a 64-bit Windows program", exe)
	}
	return oh.Subsystem == pe.IMAGE_SUBSYSTEM_WINDOWS_GUI
}

// stopServe stops s cleanly (exit 0 after "synctray host stopped"): a
// console build with SIGINT (wine's console Ctrl-C); a GUI-subsystem build,
// which has no console for Ctrl-C under wine or on Windows, with
// `synctray.exe quit`, run under wine in the same prefix.
func (p *winePrefix) stopServe(t *testing.T, s *wineServe, gui bool) {
	t.Helper()
	start := time.Now()
	how := "SIGINT"
	if gui {
		how = "synctray.exe quit"
		if out, stderr, err := p.wine(t, time.Minute, s.exe, "quit", "--addr", s.addr); err != nil || !strings.Contains(out, "stopped") {
			t.Fatalf("synctray.exe quit: %v: %q %s\nserve:\n%s", err, out, stderr, s.out.String())
		}
	} else if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after %s:\n%s", how, s.out.String())
	}
	if s.err != nil || !strings.Contains(s.out.String(), "synctray host stopped") {
		t.Fatalf("no clean stop after %s (%v):\n%s", how, s.err, s.out.String())
	}
	wineFigure(t, "%s -> clean stop (exit 0, \"synctray host stopped\") in %.2f s", how, time.Since(start).Seconds())
}

// wineHealth waits (at most limit) for GET /healthz and returns its answer.
func wineHealth(t *testing.T, s *wineServe, addr string, limit time.Duration) (map[string]any, time.Duration) {
	t.Helper()
	start := time.Now()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err == nil {
			var h map[string]any
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				return h, time.Since(start)
			}
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited before answering /healthz (%v):\n%s", s.err, s.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(start) > limit {
			t.Fatalf("no /healthz at %s after %v (%v):\n%s", addr, limit, err, s.out.String())
		}
	}
}

// wineServeCheck runs exe serve in p with the default data dir: /healthz
// names %AppData%\synctray, whose API token (in the prefix) enqueues an
// action that the built-in upstream syncs, as `outbox list --json` (run
// under wine too) shows; it stops cleanly (see stopServe), and a second
// start finds the outbox intact (the host checks it at start) with the
// action in it. gui says whether exe is a GUI-subsystem build.
func wineServeCheck(t *testing.T, p *winePrefix, exe string, gui bool) {
	t.Helper()
	dataDir := p.path("AppData/Roaming/synctray")
	if _, err := os.Stat(dataDir); err == nil {
		t.Fatalf("%s exists before the first start", dataDir)
	}
	addr := testsupport.FreeAddr(t)
	start := time.Now()
	s := p.startServe(t, exe, addr)
	h, ready := wineHealth(t, s, addr, time.Minute)
	wineFigure(t, "serve answered /healthz after %.2f s", ready.Seconds())
	if want := p.winPath(`AppData\Roaming\synctray`); h["app"] != "synctray" || !strings.EqualFold(fmt.Sprint(h["data_dir"]), want) {
		t.Fatalf("/healthz = %v, want app synctray and data_dir %s (the default, %%AppData%%\\synctray)", h, want)
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, "api-token"))
	if err != nil {
		t.Fatalf("no API token in the default data dir: %v\n%s", err, s.out.String())
	}

	// Enqueue one action, as the README's curl example does.
	key := testsupport.NewKey()
	body := `{"type":"message","payload":{"text":"hello from wine"}}`
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/actions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ans, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/actions: %d %s", resp.StatusCode, ans)
	}

	// The CLI, under wine in the same prefix, finds the token in the
	// default data dir too and sees the action synced.
	var synced time.Duration
	for {
		out, stderr, _ := p.wine(t, time.Minute, exe, "outbox", "list", "--json", "--addr", addr)
		var list struct {
			Actions []struct {
				Key   string `json:"key"`
				State string `json:"state"`
			} `json:"actions"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("outbox list --json: %v: %q %s", err, out, stderr)
		}
		if len(list.Actions) == 1 && list.Actions[0].Key == key && list.Actions[0].State == "synced" {
			synced = time.Since(start)
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("the action is not synced after a minute: %s\nserve:\n%s", out, s.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	wineFigure(t, "start, enqueue, synced (seen by outbox list --json under wine) %.2f s", synced.Seconds())

	p.stopServe(t, s, gui)

	// Start again: the outbox must pass the host's start check and hold
	// the synced action.
	s2 := p.startServe(t, exe, addr)
	wineHealth(t, s2, addr, time.Minute)
	out, stderr, _ := p.wine(t, time.Minute, exe, "outbox", "list", "--json", "--state", "synced", "--addr", addr)
	if !strings.Contains(out, key) {
		t.Fatalf("after a restart, outbox list --json --state synced = %q %s\nserve:\n%s", out, stderr, s2.out.String())
	}
	p.stopServe(t, s2, gui)
}

func TestWineExeVersion(t *testing.T) {
	exe := wineArtifact(t, "synctray.exe", "make windows")
	wineTools(t)
	defer wineWriteSummary(t)
	start := time.Now()
	p := wineNewPrefix(t)
	want := "synctray " + wineAppVersion(t) + " "
	t0 := time.Now()
	out, stderr, err := p.wine(t, time.Minute, exe, "version")
	// Read from a pipe: a console build writes there, and so must the GUI
	// build (it keeps the inherited handles: console_windows.go).
	if !strings.HasPrefix(out, want) {
		t.Fatalf("synctray.exe version: stdout %q (stderr %q, %v), want %q...", out, stderr, err, want)
	}
	wineFigure(t, "exe %s; `synctray.exe version` %.2f s: %s", wineMB(wineFileSize(t, exe)), time.Since(t0).Seconds(), strings.TrimSpace(out))
	// Built from a clean checkout (as CI does), the exe names its commit and
	// does not claim changes: what `fyne package` writes into the checkout
	// during the build is in .gitignore.
	if head, clean := gitHead(t); clean && strings.Contains(out, "(commit "+head) && strings.Contains(out, "uncommitted") {
		t.Errorf("synctray.exe version = %q, built from clean commit %s: it must not say \"uncommitted changes\"", strings.TrimSpace(out), head)
	} else if !strings.Contains(out, "(commit ") {
		t.Errorf("synctray.exe version = %q, want the commit it was built from", strings.TrimSpace(out))
	}

	// --help: the usage on stdout and exit 0, as on Linux (cli.Main,
	// TestMainUsage); and a wrong command exits 2 with its message on
	// stderr, so that wine is seen passing exit codes through and the
	// 0 above means something.
	t0 = time.Now()
	out, stderr, err = p.wine(t, time.Minute, exe, "--help")
	if code := wineExitCode(err); code != 0 {
		t.Errorf("synctray.exe --help: exit %d (%v), want 0 as on Linux", code, err)
	}
	help := strings.ReplaceAll(out, "\r\n", "\n")
	for _, line := range []string{
		"synctray keeps your actions safe while the connection comes and goes.\n",
		"\nUsage:\n",
		"\n  synctray serve [flags]  ",
		"\n  synctray outbox COMMAND  ",
		"\n  synctray version  ",
		"\nRun 'synctray COMMAND --help' for a command's flags.",
	} {
		if !strings.Contains(help, line) {
			t.Errorf("synctray.exe --help: stdout lacks %q", line)
		}
	}
	if t.Failed() {
		t.Fatalf("synctray.exe --help: stdout %q, stderr %q", out, stderr)
	}
	wineFigure(t, "`synctray.exe --help` %.2f s: exit 0, %d lines of usage on stdout", time.Since(t0).Seconds(), strings.Count(help, "\n"))

	out, stderr, err = p.wine(t, time.Minute, exe, "no-such-command")
	if code := wineExitCode(err); code != 2 || !strings.Contains(stderr, `unknown command "no-such-command"`) {
		t.Fatalf("synctray.exe no-such-command: exit %d (%v), stdout %q, stderr %q; want exit 2 and the error on stderr, as on Linux", code, err, out, stderr)
	}
	wineFigure(t, "test took %.1f s", time.Since(start).Seconds())
}

// wineExitCode is the exit code in an error of p.wine: 0 for nil, -1
// when the program did not exit by itself (a timeout, a signal).
func wineExitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

func TestWineServe(t *testing.T) {
	exe := wineArtifact(t, "synctray.exe", "make windows")
	wineTools(t)
	defer wineWriteSummary(t)
	start := time.Now()
	p := wineNewPrefix(t)
	wineServeCheck(t, p, exe, wineIsGUI(t, exe))
	wineFigure(t, "test took %.1f s", time.Since(start).Seconds())
}

// wineInstall runs the installer silently and returns how long it took.
func wineInstall(t *testing.T, p *winePrefix, setup string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	_, stderr, err := p.wine(t, 2*time.Minute, append([]string{setup, "/S"}, args...)...)
	if err != nil && strings.Contains(err.Error(), "timed out") {
		t.Fatalf("%v\n%s", err, stderr)
	}
	return time.Since(start)
}

func wineExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// waitGone waits (at most limit) until none of paths exists.
func wineWaitGone(t *testing.T, limit time.Duration, paths ...string) {
	t.Helper()
	start := time.Now()
	for {
		var left []string
		for _, p := range paths {
			if wineExists(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("still there %v after the uninstaller: %v", limit, left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWineInstaller(t *testing.T) {
	setup := wineArtifact(t, "synctray-setup.exe", "make installer")
	exe := wineArtifact(t, "synctray.exe", "make windows")
	wineTools(t)
	defer wineWriteSummary(t)
	start := time.Now()
	version := wineAppVersion(t)
	p := wineNewPrefix(t)

	took := wineInstall(t, p, setup)
	wineFigure(t, "installer %s (exe %s); silent install %.1f s",
		wineMB(wineFileSize(t, setup)), wineMB(wineFileSize(t, exe)), took.Seconds())

	instDir := p.path("AppData/Local/Programs/synctray")
	winInst := p.winPath(`AppData\Local\Programs\synctray`)
	shortcut := p.path("AppData/Roaming/Microsoft/Windows/Start Menu/Programs/synctray.lnk")
	for _, f := range []string{filepath.Join(instDir, "synctray.exe"), filepath.Join(instDir, "uninstall.exe"), shortcut} {
		if !wineExists(f) {
			t.Fatalf("not installed: %s", f)
		}
	}
	if got, want := wineFileSize(t, filepath.Join(instDir, "synctray.exe")), wineFileSize(t, exe); got != want {
		t.Fatalf("installed synctray.exe is %d bytes, bin/synctray.exe %d", got, want)
	}

	vals, ok := p.regQuery(t, wineUninstKey)
	if !ok {
		t.Fatalf("no %s", wineUninstKey)
	}
	want := map[string]string{
		"DisplayName":          "synctray",
		"DisplayVersion":       version,
		"DisplayIcon":          winInst + `\synctray.exe,0`,
		"InstallLocation":      winInst,
		"UninstallString":      `"` + winInst + `\uninstall.exe"`,
		"QuietUninstallString": `"` + winInst + `\uninstall.exe" /S`,
		"NoModify":             "0x1",
		"NoRepair":             "0x1",
	}
	for name, w := range want {
		if !strings.EqualFold(vals[name], w) {
			t.Errorf("%s %s = %q, want %q", wineUninstKey, name, vals[name], w)
		}
	}
	if vals["Publisher"] == "" {
		t.Errorf("%s has no Publisher", wineUninstKey)
	}
	var kib int64
	if _, err := fmt.Sscanf(vals["EstimatedSize"], "0x%x", &kib); err != nil || kib < wineFileSize(t, exe)/1024 {
		t.Errorf("EstimatedSize = %q (%d KiB), want at least the exe's %d KiB", vals["EstimatedSize"], kib, wineFileSize(t, exe)/1024)
	}
	if run, _ := p.regQuery(t, wineRunKey); run["synctray"] != "" {
		t.Errorf("Start at login is on after a default install: %s synctray = %q", wineRunKey, run["synctray"])
	}
	if t.Failed() {
		t.FailNow()
	}

	// The installed program works (and makes the user's data dir).
	gui := wineIsGUI(t, exe)
	wineServeCheck(t, p, winInst+`\synctray.exe`, gui)
	dataDir := p.path("AppData/Roaming/synctray")

	// While synctray runs, the uninstaller refuses (exit 2) and leaves
	// everything: Windows locks a running .exe, and a half-done uninstall
	// would leave a program without its entry.
	addr := testsupport.FreeAddr(t)
	s := p.startServe(t, winInst+`\synctray.exe`, addr)
	wineHealth(t, s, addr, time.Minute)
	_, _, err := p.wine(t, 2*time.Minute, winInst+`\uninstall.exe`, "/S", "_?="+winInst)
	if _, ok := p.regQuery(t, wineUninstKey); !ok || !wineExists(filepath.Join(instDir, "synctray.exe")) || !wineExists(shortcut) {
		t.Fatalf("the uninstaller removed synctray while it ran (wine said %v)", err)
	}
	wineFigure(t, "uninstall while synctray runs: refused, all kept (wine's exit: %v)", err)
	p.stopServe(t, s, gui)

	// Uninstall the way "Apps & features" does it quietly: the
	// uninstaller copies itself to %TEMP% and returns at once, so wait
	// for its work.
	t0 := time.Now()
	q := vals["QuietUninstallString"]
	uninst := strings.Trim(strings.TrimSuffix(q, " /S"), `"`)
	if _, stderr, err := p.wine(t, 2*time.Minute, uninst, "/S"); err != nil && strings.Contains(err.Error(), "timed out") {
		t.Fatalf("%v\n%s", err, stderr)
	}
	wineWaitGone(t, time.Minute, filepath.Join(instDir, "synctray.exe"), filepath.Join(instDir, "uninstall.exe"), instDir, shortcut)
	for {
		if _, ok := p.regQuery(t, wineUninstKey); !ok {
			break
		}
		if time.Since(t0) > time.Minute {
			t.Fatalf("%s still there a minute after the uninstaller", wineUninstKey)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wineFigure(t, "silent uninstall (files, shortcut, Uninstall key gone) %.1f s", time.Since(t0).Seconds())
	for _, f := range []string{"api-token", "outbox.db"} {
		if !wineExists(filepath.Join(dataDir, f)) {
			t.Errorf("the uninstaller (without /PURGE=1) removed the user's data: no %s in %s", f, dataDir)
		}
	}
	wineFigure(t, "test took %.1f s", time.Since(start).Seconds())
}

// TestWineInstallerOptions: /AUTOSTART=1|0 (and keeping the choice on a
// reinstall), a bad option, and the uninstaller's /PURGE=1, waited for
// with _?=.
func TestWineInstallerOptions(t *testing.T) {
	setup := wineArtifact(t, "synctray-setup.exe", "make installer")
	wineTools(t)
	defer wineWriteSummary(t)
	start := time.Now()
	p := wineNewPrefix(t)
	instDir := p.path("AppData/Local/Programs/synctray")
	winInst := p.winPath(`AppData\Local\Programs\synctray`)
	wantRun := `"` + winInst + `\synctray.exe"`
	// The Run value once it is want, or as it is after 5 s: wine has been
	// seen to answer `reg query` before the writes of an installer that
	// already exited are visible there.
	runValue := func(want string) string {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			vals, _ := p.regQuery(t, wineRunKey)
			if got := vals["synctray"]; strings.EqualFold(got, want) || time.Now().After(end) {
				return got
			}
		}
	}

	wineInstall(t, p, setup, "/AUTOSTART=yes")
	if wineExists(instDir) {
		t.Fatalf("/AUTOSTART=yes was accepted: %s exists", instDir)
	}

	wineInstall(t, p, setup, "/AUTOSTART=1")
	if !wineExists(filepath.Join(instDir, "synctray.exe")) {
		t.Fatal("/S /AUTOSTART=1 installed nothing")
	}
	if got := runValue(wantRun); !strings.EqualFold(got, wantRun) {
		t.Fatalf("after /AUTOSTART=1: %s synctray = %q, want %q", wineRunKey, got, wantRun)
	}
	wineInstall(t, p, setup) // a reinstall keeps the choice
	if got := runValue(wantRun); !strings.EqualFold(got, wantRun) {
		t.Fatalf("a reinstall without /AUTOSTART dropped Start at login: %q", got)
	}
	wineInstall(t, p, setup, "/autostart=0") // options are case-insensitive
	if got := runValue(""); got != "" {
		t.Fatalf("after /AUTOSTART=0: %s synctray = %q, want none", wineRunKey, got)
	}
	wineInstall(t, p, setup, "/AUTOSTART=1")
	if got := runValue(wantRun); !strings.EqualFold(got, wantRun) {
		t.Fatalf("after /AUTOSTART=1 again: %q", got)
	}
	wineFigure(t, "/AUTOSTART=yes refused, =1 sets the Run value, a reinstall keeps it, =0 removes it")

	// User data to purge (as if synctray had run).
	dataDir := p.path("AppData/Roaming/synctray")
	if err := os.MkdirAll(filepath.Join(dataDir, "upstream"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"api-token", "outbox.db", "upstream/upstream.db"} {
		if err := os.WriteFile(filepath.Join(dataDir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// _?=DIR: the uninstaller runs in place and wine waits for it; it
	// cannot delete itself then (NSIS documents it), so uninstall.exe stays.
	t0 := time.Now()
	if _, stderr, err := p.wine(t, 2*time.Minute, filepath.Join(instDir, "uninstall.exe"), "/S", "/PURGE=1", "_?="+winInst); err != nil && strings.Contains(err.Error(), "timed out") {
		t.Fatalf("%v\n%s", err, stderr)
	}
	wineFigure(t, "uninstall.exe /S /PURGE=1 _?=DIR %.1f s", time.Since(t0).Seconds())
	for _, f := range []string{filepath.Join(instDir, "synctray.exe"), dataDir,
		p.path("AppData/Roaming/Microsoft/Windows/Start Menu/Programs/synctray.lnk")} {
		if wineExists(f) {
			t.Errorf("still there after uninstall.exe /S /PURGE=1: %s", f)
		}
	}
	if got := runValue(""); got != "" {
		t.Errorf("the uninstaller left %s synctray = %q", wineRunKey, got)
	}
	if _, ok := p.regQuery(t, wineUninstKey); ok {
		t.Errorf("the uninstaller left %s", wineUninstKey)
	}
	if !wineExists(filepath.Join(instDir, "uninstall.exe")) {
		t.Logf("uninstall.exe deleted itself despite _?= (fine)")
	}
	wineFigure(t, "test took %.1f s", time.Since(start).Seconds())
}

// gitHead is the checkout's commit, and whether the checkout is clean;
// "" when git cannot tell.
func gitHead(t *testing.T) (string, bool) {
	t.Helper()
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	st, err := exec.Command("git", "status", "--porcelain").Output()
	return strings.TrimSpace(string(head)), err == nil && len(bytes.TrimSpace(st)) == 0
}
