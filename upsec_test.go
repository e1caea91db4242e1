package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/upstream"
)

// apiGet sends an authorized GET to the host's API and decodes the answer.
func apiGet(t *testing.T, base, token, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// TestTheBuiltInUpstreamAnswersOnlyItsHost starts serve without
// --upstream and plays another local program that found the built-in
// upstream's port.
func TestTheBuiltInUpstreamAnswersOnlyItsHost(t *testing.T) {
	dir := t.TempDir()
	addr := testsupport.FreeAddr(t)
	base := "http://" + addr
	logf := hostLog(t)
	// Working offline: only the Sync now below sends, so its report counts the action.
	p := startProc(t, logf, "serve", "--data-dir", dir, "--addr", addr, "--work-offline", "--log-level", "warn")
	waitHealthy(t, base, p)
	token := readToken(t, dir)
	var st struct {
		Upstream string `json:"upstream"`
	}
	apiGet(t, base, token, "/api/status", &st)
	if !strings.HasPrefix(st.Upstream, "http://127.0.0.1:") {
		t.Fatalf("status names upstream %q, want the built-in one on loopback", st.Upstream)
	}

	do := func(method, path, bearer, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, st.Upstream+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	key := testsupport.NewKey()
	inject := `{"actions":[{"key":"` + key + `","type":"message","payload":{"text":"injected"}}]}`
	for _, bearer := range []string{"", "wrong", token} { // not even the host's API token
		if code := do("GET", "/v1/events", bearer, ""); code != http.StatusUnauthorized {
			t.Errorf("GET /v1/events with token %q: %d, want 401", bearer, code)
		}
		if code := do("POST", "/v1/actions", bearer, inject); code != http.StatusUnauthorized {
			t.Errorf("POST /v1/actions with token %q: %d, want 401", bearer, code)
		}
	}
	ws := "ws" + strings.TrimPrefix(st.Upstream, "http") + "/v1/events/ws"
	if _, resp, err := websocket.DefaultDialer.Dial(ws, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("WebSocket without token: err %v, resp %v; want 401", err, resp)
	}

	tokPath := filepath.Join(dir, "upstream", "token")
	if _, err := os.Stat(tokPath); err != nil {
		t.Fatalf("no built-in upstream token: %v", err)
	}
	testsupport.CheckPrivate(t, tokPath)
	b, _ := os.ReadFile(tokPath)
	upToken := string(bytes.TrimSpace(b))
	if code := do("GET", "/v1/events", upToken, ""); code != 200 {
		t.Fatalf("GET /v1/events with the data dir's upstream token: %d, want 200", code)
	}

	// The host itself holds the token: its actions still go through.
	req, _ := http.NewRequest("POST", base+"/api/actions", strings.NewReader(`{"type":"message","payload":{"text":"mine"}}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", testsupport.NewKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("enqueue: %v %v", err, resp)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", base+"/api/sync", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("sync through the built-in upstream: %v %v", err, resp)
	}
	var rep struct {
		Synced int `json:"synced"`
	}
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if rep.Synced != 1 {
		t.Fatalf("sync report %+v, want 1 synced", rep)
	}
}

func TestServeRefusesABadUpstreamOrBatchSizeAtStart(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"--upstream 127.0.0.1:7760", "is not an absolute URL"},
		{"--upstream ftp://x", `scheme "ftp" is not supported`},
		{"--upstream http://127.0.0.1:1 --batch-size 1001", "--batch-size 1001: want 1 to 1000"},
	} {
		t.Run(c.args, func(t *testing.T) {
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"}, strings.Fields(c.args)...)
			// A start that is wrongly accepted runs until killed here.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, args...)
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), c.want) {
				t.Fatalf("exit %d, want 1; output:\n%s\nwant it to contain %q", cmd.ProcessState.ExitCode(), out, c.want)
			}
		})
	}
	// "not a url" has spaces: one argument.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--upstream", "not a url")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), `upstream URL "not a url" is not an absolute URL`) {
		t.Fatalf("exit %d, want 1:\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

func TestServeKeepsTheUpstreamPathPrefix(t *testing.T) {
	srv, _ := testupstream.New(t, upstream.Options{})
	var mu sync.Mutex
	var seen []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		http.StripPrefix("/myapi", srv).ServeHTTP(w, r)
	}))
	defer ts.Close()
	defer srv.Close()

	dir, addr := t.TempDir(), testsupport.FreeAddr(t)
	logf := hostLog(t)
	p := startProc(t, logf, "serve", "--data-dir", dir, "--addr", addr, "--upstream", ts.URL+"/myapi/", "--work-offline", "--log-level", "warn")
	waitHealthy(t, "http://"+addr, p)
	token := readToken(t, dir)
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/actions", strings.NewReader(`{"type":"message","payload":{}}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", testsupport.NewKey())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 202 {
		t.Fatalf("enqueue: %v %v", err, resp)
	}
	cmd := exec.Command(binary, "outbox", "sync", "--data-dir", dir, "--addr", addr)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "synced 1") {
		t.Fatalf("outbox sync: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, "POST /myapi/v1/actions") {
		t.Fatalf("requests %v; want POST /myapi/v1/actions", seen)
	}
	for _, s := range seen {
		if !strings.Contains(s, " /myapi/v1/") {
			t.Fatalf("request %q lost the prefix (all: %v)", s, seen)
		}
	}
}

// TestServeOnAnotherLoopbackAddress runs the host on 127.0.0.2 and [::1]
// and uses it as a person would: the CLI and the login link.
func TestServeOnAnotherLoopbackAddress(t *testing.T) {
	for _, ip := range []string{"127.0.0.2", "::1"} {
		t.Run("on "+ip, func(t *testing.T) {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
			if err != nil {
				t.Skipf("this machine has no loopback address %s (%v)", ip, err)
			}
			addr := ln.Addr().String()
			ln.Close()
			dir := t.TempDir()
			base := "http://" + addr
			logf := hostLog(t)
			p := startProc(t, logf, "serve", "--data-dir", dir, "--addr", addr, "--work-offline", "--log-level", "warn")
			waitHealthy(t, base, p)
			readToken(t, dir)

			run := func(args ...string) string {
				t.Helper()
				cmd := exec.Command(binary, append(args, "--data-dir", dir, "--addr", addr)...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("synctray %v: %v\n%s", args, err, out)
				}
				return string(out)
			}
			if out := run("outbox", "status"); !strings.Contains(out, "working offline") {
				t.Fatalf("outbox status:\n%s", out)
			}
			link := strings.TrimSpace(run("open", "--print"))
			if !strings.HasPrefix(link, base+"/login?token=") {
				t.Fatalf("login link %q is not on %s", link, base)
			}
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noRedirect.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
				t.Fatalf("login link: %d, cookies %v; want 303 and a session cookie", resp.StatusCode, resp.Cookies())
			}
			req, _ := http.NewRequest("POST", base+"/api/actions", strings.NewReader(`{"type":"message","payload":{}}`))
			req.AddCookie(resp.Cookies()[0])
			req.Header.Set("Origin", base)
			req.Header.Set("Idempotency-Key", testsupport.NewKey())
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 202 {
				t.Fatalf("enqueue from the page's origin %s with its cookie: %d, want 202", base, resp.StatusCode)
			}
		})
	}
}
