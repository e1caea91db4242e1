package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"synctray/app"
	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/upstream"
)

// runningHost runs a host (working offline, nothing upstream) on a free
// port with dir as its data dir and returns its address.
func runningHost(t *testing.T, dir string) (addr string, h *localserver.Host) {
	t.Helper()
	return runningHostWith(t, localserver.Config{DataDir: dir, UpstreamURL: "http://127.0.0.1:1", WorkOffline: true})
}

// runningHostWith runs a host with cfg on a free port and returns its
// address.
func runningHostWith(t *testing.T, cfg localserver.Config) (addr string, h *localserver.Host) {
	t.Helper()
	cfg.Addr, cfg.Logger = "127.0.0.1:0", testsupport.Logger(t)
	h, err := localserver.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return strings.TrimPrefix(h.URL(), "http://"), h
}

// run runs Main with args and returns the exit code, stdout and stderr.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb testsupport.SyncBuffer
	code = Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// hostWrite sends a write to the host with its token and a new
// Idempotency-Key; the caller closes the answer's body.
func hostWrite(t *testing.T, h *localserver.Host, method, path, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, h.URL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.Token())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", testsupport.NewKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// enqueue stores one message action in the host and returns its id.
func enqueue(t *testing.T, h *localserver.Host) int64 {
	t.Helper()
	resp := hostWrite(t, h, "POST", "/api/actions", `{"type":"message","payload":{"text":"hi"}}`)
	defer resp.Body.Close()
	var a struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 202 {
		t.Fatalf("enqueue: %d %v", resp.StatusCode, err)
	}
	return a.ID
}

func TestWithJSONEveryErrorIsJSONOnStdout(t *testing.T) {
	dir := t.TempDir()
	addr, _ := runningHost(t, dir)
	tokenOnly := t.TempDir() // a token, but no host at nobody
	os.WriteFile(filepath.Join(tokenOnly, "api-token"), []byte(strings.Repeat("ab", 32)), 0o600)
	nobody := testsupport.FreeAddr(t)
	cases := []struct {
		name     string
		args     []string
		exit     int
		wantCode string
	}{
		{"an unknown action is the host's not_found", []string{"outbox", "show", "999999", "--json", "--data-dir", dir, "--addr", addr}, 1, "not_found"},
		{"no host running is host_unreachable", []string{"outbox", "status", "--json", "--data-dir", tokenOnly, "--addr", nobody}, 1, "host_unreachable"},
		{"a data dir without a token is no_token", []string{"outbox", "list", "--json", "--data-dir", t.TempDir(), "--addr", nobody}, 1, "no_token"},
		{"a bad action id is a usage error", []string{"outbox", "show", "x", "--json", "--data-dir", dir, "--addr", addr}, 2, "usage"},
		{"a bad flag value is a usage error", []string{"outbox", "list", "--limit", "many", "--json"}, 2, "usage"},
		{"an unknown flag is a usage error", []string{"outbox", "--json", "list", "--bogus"}, 2, "usage"},
		{"an unknown command is a usage error", []string{"outbox", "explode", "--json=true"}, 2, "usage"},
		{"no command is a usage error", []string{"outbox", "--json"}, 2, "usage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, c.args...)
			var eb struct {
				Error *localserver.ErrorBody `json:"error"`
			}
			if err := json.Unmarshal([]byte(stdout), &eb); err != nil || eb.Error == nil {
				t.Fatalf("stdout %q is not {\"error\":{...}}: %v (stderr %q)", stdout, err, stderr)
			}
			if code != c.exit || eb.Error.Code != c.wantCode || eb.Error.Message == "" {
				t.Fatalf("exit %d, error %+v; want exit %d, code %q and a message", code, *eb.Error, c.exit, c.wantCode)
			}
		})
	}
	t.Run("without --json the error is a line on stderr", func(t *testing.T) {
		code, stdout, stderr := run(t, "outbox", "show", "999999", "--data-dir", dir, "--addr", addr)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "not found") {
			t.Fatalf("exit %d stdout %q stderr %q, want exit 1 and the error on stderr only", code, stdout, stderr)
		}
	})
}

func TestAWrongDataDirNamesTheOneTheHostUses(t *testing.T) {
	hostDir := t.TempDir()
	addr, _ := runningHost(t, hostDir)
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "api-token"), []byte(strings.Repeat("cd", 32)), 0o600)

	code, _, stderr := run(t, "outbox", "status", "--data-dir", other, "--addr", addr)
	if code != 1 || !strings.Contains(stderr, "the API token in "+other+" does not match the synctray running at http://"+addr) ||
		!strings.Contains(stderr, "which uses the data dir "+hostDir) {
		t.Fatalf("exit %d stderr %q, want it to say the token of %s does not match and that the host uses %s", code, stderr, other, hostDir)
	}
	code, stdout, _ := run(t, "outbox", "status", "--json", "--data-dir", other, "--addr", addr)
	if code != 1 || !strings.Contains(stdout, `"code":"token_mismatch"`) {
		t.Fatalf("--json: exit %d stdout %q, want code token_mismatch", code, stdout)
	}
}

// fakeOpener puts a script named like the desktop's opener first in PATH.
func fakeOpener(t *testing.T, script string) {
	t.Helper()
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		testsupport.Skip(t, "the fake opener is a shell script named xdg-open")
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestOpenPrintsTheLinkWhenTheBrowserCannotStart(t *testing.T) {
	dir := t.TempDir()
	addr, _ := runningHost(t, dir)
	fakeOpener(t, `echo "xdg-open: no method available for opening '$1'" >&2; exit 4`)
	code, stdout, stderr := run(t, "open", "--data-dir", dir, "--addr", addr)
	if code != 0 || !regexp.MustCompile(`(?m)^open this link in your browser: http://`+regexp.QuoteMeta(addr)+`/login\?token=\w+$`).MatchString(stdout) {
		t.Fatalf("exit %d stdout %q, want exit 0 and the login link to open by hand", code, stdout)
	}
	if !strings.Contains(stderr, "xdg-open exited with status 4: xdg-open: no method available") {
		t.Fatalf("stderr %q, want the opener's status and message", stderr)
	}
}

func TestOpenBrowserWaitsForTheOpener(t *testing.T) {
	t.Run("an opener that succeeds is no error", func(t *testing.T) {
		fakeOpener(t, "exit 0")
		if err := OpenBrowser("http://127.0.0.1:1/"); err != nil {
			t.Fatalf("OpenBrowser = %v, want nil", err)
		}
	})
	t.Run("an opener that fails is an error naming its status", func(t *testing.T) {
		fakeOpener(t, "exit 4")
		if err := OpenBrowser("http://127.0.0.1:1/"); err == nil || err.Error() != "xdg-open exited with status 4" {
			t.Fatalf("OpenBrowser = %v, want xdg-open exited with status 4", err)
		}
	})
	t.Run("a missing opener is an error", func(t *testing.T) {
		if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
			t.Skip("xdg-open only")
		}
		t.Setenv("PATH", t.TempDir())
		if err := OpenBrowser("http://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "xdg-open is not installed") {
			t.Fatalf("OpenBrowser = %v, want xdg-open is not installed", err)
		}
	})
	t.Run("an opener still running after the wait has started the browser", func(t *testing.T) {
		dir := t.TempDir()
		release := filepath.Join(dir, "release")
		// It also ends when dir is gone: t.TempDir's cleanup may remove
		// the release file before the loop has seen it.
		fakeOpener(t, fmt.Sprintf("while [ -d %q ] && [ ! -e %q ]; do sleep 0.05; done; exit 4", dir, release))
		t.Cleanup(func() { os.WriteFile(release, nil, 0o600) })
		old := openerWait
		openerWait = time.Millisecond
		defer func() { openerWait = old }()
		if err := OpenBrowser("http://127.0.0.1:1/"); err != nil {
			t.Fatalf("OpenBrowser = %v, want nil while the opener runs", err)
		}
	})
}

func TestAnUnwritableDataDirIsNamedWithTheFix(t *testing.T) {
	var dir string
	switch {
	case os.Geteuid() != 0 && runtime.GOOS != "windows":
		parent := filepath.Join(t.TempDir(), "ro")
		os.Mkdir(parent, 0o500)
		t.Cleanup(func() { os.Chmod(parent, 0o700) })
		dir = filepath.Join(parent, "data")
	case runtime.GOOS == "linux":
		dir = "/sys/synctray-test-data" // not even root may create it
	default:
		t.Skip("no unwritable directory for this user")
	}
	for _, args := range [][]string{{}, {"--upstream", "http://127.0.0.1:1"}} {
		t.Run(fmt.Sprintf("serve %v", args), func(t *testing.T) {
			code, _, stderr := run(t, append([]string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0"}, args...)...)
			want := "the data dir " + dir + " cannot be written ("
			if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "make it writable for your user, or pick another with --data-dir") ||
				strings.Contains(stderr, "upstream") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d stderr %q, want one line saying %q and the fix, without blaming the upstream", code, stderr, want)
			}
		})
	}
}

func TestTheStandaloneUpstreamDoesNotShareTheBuiltInOnesStore(t *testing.T) {
	t.Run("its default directory is not <data-dir>/upstream", func(t *testing.T) {
		if got, builtin := defaultUpstreamDir(), filepath.Join(defaultDataDir(), "upstream"); got == builtin {
			t.Fatalf("default upstream dir %s is the built-in upstream's", got)
		}
	})
	t.Run("its help describes its directory", func(t *testing.T) {
		_, _, stderr := run(t, "upstream", "--help")
		// flag prints the default quoted: Windows' backslashes doubled.
		dir := strings.Trim(strconv.Quote(defaultUpstreamDir()), `"`)
		if !strings.Contains(stderr, dir) || !strings.Contains(stderr, "upstream.db") || strings.Contains(stderr, "outbox, API token") {
			t.Fatalf("upstream --help:\n%s\nwant its own directory (%s, upstream.db), not the host's", stderr, defaultUpstreamDir())
		}
	})
	t.Run("it refuses the store of a running built-in upstream", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "upstream")
		_, runUp, err := startUpstream(dir, "127.0.0.1:0", upstreamDB{}, upstream.Options{Token: strings.Repeat("ef", 32), Logger: testsupport.Logger(t)}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- runUp(ctx) }()
		defer func() { cancel(); <-done }()
		code, _, stderr := run(t, "upstream", "--data-dir", dir, "--addr", "127.0.0.1:0", "--insecure-no-auth")
		if code != 1 || !strings.Contains(stderr, "data dir "+dir+" is in use by synctray") {
			t.Fatalf("exit %d stderr %q, want a refusal: the directory is in use", code, stderr)
		}
	})
}

func TestPolish(t *testing.T) {
	dir := t.TempDir()
	addr, h := runningHost(t, dir)
	at := []string{"--data-dir", dir, "--addr", addr}

	t.Run("outbox offline prints the state after the change", func(t *testing.T) {
		if _, stdout, _ := run(t, append([]string{"outbox", "online"}, at...)...); !strings.HasPrefix(stdout, "online ·") {
			t.Fatalf("outbox online: %q, want it to start with online", stdout)
		}
		if _, stdout, _ := run(t, append([]string{"outbox", "offline"}, at...)...); !strings.HasPrefix(stdout, "working offline (automatic sync paused)") {
			t.Fatalf("outbox offline: %q, want it to start with working offline", stdout)
		}
	})
	t.Run("cancelling a cancelled action says it already is", func(t *testing.T) {
		id := fmt.Sprint(enqueue(t, h))
		if code, _, stderr := run(t, append([]string{"outbox", "cancel", id}, at...)...); code != 0 {
			t.Fatalf("first cancel: exit %d %s", code, stderr)
		}
		code, _, stderr := run(t, append([]string{"outbox", "cancel", id}, at...)...)
		if want := "synctray: action " + id + " is already cancelled"; code != 1 || !strings.HasPrefix(stderr, want) || strings.Contains(stderr, "cannot be") {
			t.Fatalf("second cancel: exit %d stderr %q, want %q", code, stderr, want)
		}
	})
	t.Run("a bad flag value is one line and a pointer to --help", func(t *testing.T) {
		code, stdout, stderr := run(t, "serve", "--batch-size", "many")
		want := "synctray serve: invalid value \"many\" for flag -batch-size: parse error\nrun 'synctray serve --help' for more\n"
		if code != 2 || stdout != "" || stderr != want {
			t.Fatalf("exit %d stderr %q, want exit 2 and %q", code, stderr, want)
		}
	})
	t.Run("a bad flag of the tray app points at synctray --help", func(t *testing.T) {
		if code, _, stderr := run(t, "--retention", "soon"); code != 2 || !strings.HasSuffix(stderr, "run 'synctray --help' for more\n") {
			t.Fatalf("exit %d stderr %q", code, stderr)
		}
	})
	for _, args := range [][]string{{"version"}, {"--version"}} {
		t.Run(strings.Join(args, " ")+" prints the version", func(t *testing.T) {
			code, stdout, _ := run(t, args...)
			if code != 0 || !strings.HasPrefix(stdout, "synctray "+app.Version+" (commit ") {
				t.Fatalf("exit %d stdout %q, want synctray %s (commit …)", code, stdout, app.Version)
			}
		})
	}
}

func TestVersionTextNamesTheCommit(t *testing.T) {
	info := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.99"}
		for i := 0; i < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	cases := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"a clean build names its commit", info("vcs.revision", "abc123", "vcs.modified", "false"), true, "synctray " + app.Version + " (commit abc123) go1.99"},
		{"a modified build says so", info("vcs.revision", "abc123", "vcs.modified", "true"), true, "synctray " + app.Version + " (commit abc123, with uncommitted changes) go1.99"},
		{"a build without VCS says so", info(), true, "synctray " + app.Version + " (commit unknown: built without VCS information) go1.99"},
		{"no build info says so", nil, false, "synctray " + app.Version + " (commit unknown: built without VCS information)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := versionText(c.info, c.ok); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
