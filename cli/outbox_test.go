package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"synctray/internal/testsupport"
	"synctray/localserver"
)

// `synctray outbox status` of a host the upstream blocked (it answers
// 401 to our token): the state line, the problem line, and the same in
// --json.
func TestOutboxStatusShowsABlockedHostAndItsProblem(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"unauthorized","message":"wrong token"}}`))
	}))
	defer up.Close()
	dir := t.TempDir()
	addr, h := runningHostWith(t, localserver.Config{DataDir: dir, UpstreamURL: up.URL, UpstreamToken: "wrong"})
	enqueue(t, h)

	var st struct {
		State   string `json:"state"`
		Problem *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"problem"`
		Counts map[string]int `json:"counts"`
	}
	// Blocked comes a moment before the batch is recorded back in the queue.
	testsupport.WaitFor(t, "the host blocked, the action queued again", func() bool {
		code, stdout, stderr := run(t, "outbox", "status", "--json", "--data-dir", dir, "--addr", addr)
		if code != 0 {
			t.Fatalf("status --json: exit %d, %s %s", code, stdout, stderr)
		}
		if err := json.Unmarshal([]byte(stdout), &st); err != nil {
			t.Fatalf("status --json: %v: %s", err, stdout)
		}
		return st.State == "blocked" && st.Counts["syncing"] == 0
	})
	const problem = "Upstream refused the token (401 Unauthorized): wrong token"
	if st.Problem == nil || st.Problem.Code != "unauthorized" || st.Problem.Message != problem || st.Counts["queued"] != 1 {
		t.Fatalf("status --json: state %q, problem %+v, counts %v; want unauthorized %q and 1 queued", st.State, st.Problem, st.Counts, problem)
	}

	code, stdout, stderr := run(t, "outbox", "status", "--data-dir", dir, "--addr", addr)
	if code != 0 {
		t.Fatalf("status: exit %d, %s %s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile("^blocked \\(automatic sync stopped until `synctray outbox sync` or a new configuration\\) · upstream " + regexp.QuoteMeta(up.URL) + "$"),
		regexp.MustCompile(`^problem: ` + regexp.QuoteMeta(problem) + ` \(unauthorized, since \d\d:\d\d:\d\d\)$`),
		regexp.MustCompile(`^queued 1 · syncing 0 · synced 0 · failed 0 · cancelled 0$`),
	}
	if len(lines) != len(want) { // the last error is the problem: not said twice
		t.Fatalf("status printed %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i+1, lines[i], re)
		}
	}
}
