package packaging

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// crossDir is where `make windows-tests` puts the core packages' tests,
// cross-compiled for Windows: <import path with / as _>.test.exe.
const crossDir = "../bin/windows-tests"

// crossWineOnly are failures that are wine's, not synctray's: lines that
// match make a failed test count as wine's when nothing else failed it.
var crossWineOnly = []*regexp.Regexp{
	// wine 8 answers FileDispositionInformationEx with
	// STATUS_NOT_IMPLEMENTED, where Windows 10 deletes the file or
	// answers a status that makes Go fall back; Go's os.RemoveAll then
	// fails in t.TempDir's cleanup.
	regexp.MustCompile(`unlinkat .*: Invalid function\.`),
}

// crossKnown are whole tests that cannot pass under wine, and why.
var crossKnown = map[string]string{
	// wine 8 accepts SetNamedSecurityInfo on a file and keeps nothing: its
	// ACLs are made up from the Unix mode on each read.
	"internal/private.TestRestrictThenExposedSaysPrivate":       "wine keeps no file ACLs",
	"internal/private.TestExposedNamesOthersAndRestrictFixesIt": "wine keeps no file ACLs",
	// Files a Windows program makes under wine are mode 0664 or so, which
	// wine shows as an ACL that lets Everyone read: a token or header file
	// written by the test is then (rightly) found readable by others.
	"cli.TestTheStandaloneUpstreamStartsWithATokenOrTheNamedOptOut/a_token_file_draws_none":                               "wine keeps no file ACLs",
	"cli.TestTheUpstreamRefusesABadDatabaseConfiguration/an_empty_DSN_file":                                               "wine keeps no file ACLs",
	"cli.TestServeChecksTheHTTPModeFlags/--upstream_http://127.0.0.1:1_--upstream-protocol_http_--upstream-header-file_*": "wine keeps no file ACLs",
}

// crossKnownReason says why pkg.name cannot pass under wine, or "".
// A key ending in * matches every name it starts.
func crossKnownReason(pkg, name string) string {
	full := pkg + "." + name
	for k, why := range crossKnown {
		if k == full || strings.HasSuffix(k, "*") && strings.HasPrefix(full, strings.TrimSuffix(k, "*")) {
			return why
		}
	}
	return ""
}

// TestCoreTestsPassUnderWine runs the Windows builds of the core
// packages' tests under wine, each in its own fresh prefix, and fails on
// every failure that is not wine's own (crossWineOnly, crossKnown). It
// writes what it saw to artifacts/wine-go-tests.txt.
func TestCoreTestsPassUnderWine(t *testing.T) {
	exes, _ := filepath.Glob(filepath.Join(crossDir, "*.test.exe"))
	if len(exes) == 0 {
		cannot(t, "missing the Windows test binaries (make windows-tests builds them)")
	}
	if _, err := exec.LookPath("wine"); err != nil {
		cannot(t, "missing wine (apt-get install wine wine64)")
	}
	// One prefix for every binary, with a wineserver that lasts until
	// cleanup: a server that exits 3 s after its last client races the
	// next binary's start ("wine client error:0: recvmsg: Connection
	// reset by peer", and the binary never runs).
	prefix := wineNewPrefix(t)
	var report strings.Builder
	fmt.Fprintf(&report, "Core packages' tests, built for windows/amd64, run under %s\n", crossWineVersion())
	fmt.Fprintf(&report, "%-28s %6s %5s %5s %10s %8s %6s\n", "package", "passed", "skip", "fail", "wine-only", "known", "time")
	for _, exe := range exes {
		pkg := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(exe), ".test.exe"), "_", "/")
		t.Run(pkg, func(t *testing.T) {
			r := crossRun(t, prefix, pkg, exe)
			if r.ran() == 0 && strings.Contains(r.tail, "wine client error") {
				// wine's own client lost its server before the binary
				// ran: once more, and say so.
				fmt.Fprintf(&report, "    rerun: wine failed to start the binary (%s)\n", r.tail)
				r = crossRun(t, prefix, pkg, exe)
			}
			fmt.Fprintf(&report, "%-28s %6d %5d %5d %10d %8d %5.1fs\n", pkg, r.passed, r.skipped, len(r.failed), len(r.wineOnly), len(r.known), r.elapsed.Seconds())
			for _, name := range r.known {
				fmt.Fprintf(&report, "    known under wine: %s (%s)\n", name, crossKnownReason(pkg, name))
			}
			for _, f := range r.failed {
				t.Errorf("%s failed under wine:\n%s", f.name, strings.Join(f.lines, "\n"))
				fmt.Fprintf(&report, "    FAILED: %s\n", f.name)
			}
			if r.ran() == 0 {
				t.Errorf("no test passed: the binary did not run (%s)", r.tail)
			}
		})
	}
	report.WriteString("wine-only: failed only in removing files (wine 8's unlinkat \"Invalid function\", mostly t.TempDir's cleanup); every check passed.\n")
	t.Log("\n" + report.String())
	if err := os.MkdirAll("../artifacts", 0o755); err == nil {
		os.WriteFile("../artifacts/wine-go-tests.txt", []byte(report.String()), 0o644)
	}
}

type crossFailure struct {
	name  string
	lines []string
}

type crossResult struct {
	passed, skipped int
	failed          []crossFailure
	wineOnly, known []string
	elapsed         time.Duration
	tail            string
}

// ran is how many tests the binary reported, whatever their outcome.
func (r crossResult) ran() int {
	return r.passed + r.skipped + len(r.failed) + len(r.wineOnly) + len(r.known)
}

// crossRun runs one test binary (in its package's source dir, for
// testdata) and sorts its failures through test2json's events.
func crossRun(t *testing.T, prefix *winePrefix, pkg, exe string) crossResult {
	abs, _ := filepath.Abs(exe)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wine := exec.CommandContext(ctx, "wine", abs, "-test.v=test2json", "-test.timeout=8m", "-test.count=1")
	wine.Dir = filepath.Join("..", pkg)
	wine.Env = prefix.env
	wine.WaitDelay = 5 * time.Second // pipes kept open by a wineserver: see wineNewPrefix
	conv := exec.CommandContext(ctx, "go", "tool", "test2json", "-p", pkg)
	pipe, err := wine.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	wine.Stderr = wine.Stdout
	conv.Stdin = pipe
	out, err := conv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := conv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := wine.Start(); err != nil {
		t.Fatal(err)
	}
	type ev struct {
		Action, Test, Output string
	}
	output := map[string][]string{}
	status := map[string]string{}
	var tail []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e ev
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch e.Action {
		case "output":
			line := strings.TrimRight(e.Output, "\n")
			output[e.Test] = append(output[e.Test], line)
			if tail = append(tail, line); len(tail) > 5 {
				tail = tail[1:]
			}
		case "pass", "fail", "skip":
			if e.Test != "" {
				status[e.Test] = e.Action
			}
		}
	}
	wine.Wait()
	conv.Wait()
	r := crossResult{elapsed: time.Since(start), tail: strings.Join(tail, " | ")}
	names := make([]string, 0, len(status))
	for name := range status {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch status[name] {
		case "pass":
			r.passed++
		case "skip":
			r.skipped++
		case "fail":
			if crossKnownReason(pkg, name) != "" {
				r.known = append(r.known, name)
				continue
			}
			if hasFailedChild(name, status) {
				continue // counted in its subtests
			}
			if lines := crossRealFailures(output[name]); len(lines) > 0 {
				r.failed = append(r.failed, crossFailure{name, lines})
			} else {
				r.wineOnly = append(r.wineOnly, name)
			}
		}
	}
	return r
}

func hasFailedChild(name string, status map[string]string) bool {
	for other, s := range status {
		if s == "fail" && strings.HasPrefix(other, name+"/") {
			return true
		}
	}
	return false
}

// crossRealFailures returns a test's output lines that say why it failed,
// other than the framing and wine's own.
func crossRealFailures(lines []string) []string {
	var real []string
	failed := false
	for _, l := range lines {
		s := strings.TrimSpace(l)
		if strings.HasPrefix(s, "--- FAIL") {
			failed = true
			continue
		}
		if s == "" || strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- ") {
			continue
		}
		if slices.ContainsFunc(crossWineOnly, func(re *regexp.Regexp) bool { return re.MatchString(s) }) {
			continue
		}
		// Only test-framework lines ("file_test.go:12: ...") are checks;
		// log lines of the code under test are context.
		if regexp.MustCompile(`^\S+\.go:\d+: `).MatchString(s) {
			real = append(real, l)
		}
	}
	if !failed {
		return nil
	}
	if len(real) == 0 {
		// A failure without a check line (a panic, a timeout) is real.
		for _, l := range lines {
			if strings.Contains(l, "panic") || strings.Contains(l, "timed out") {
				return lines
			}
		}
	}
	return real
}

func crossWineVersion() string {
	out, err := exec.Command("wine", "--version").Output()
	if err != nil {
		return "wine"
	}
	return strings.TrimSpace(string(out))
}
