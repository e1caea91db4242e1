package cli

import (
	"strings"
	"testing"
	"unicode/utf8"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/idemserver"
	"synctray/localserver"
	"synctray/localserver/outbox"
)

// upstreamWrite sends a page's write through the host's /upstream/ and
// waits for the upstream's answer; it returns the action's id.
func upstreamWrite(t *testing.T, h *localserver.Host, method, path, body string) string {
	t.Helper()
	resp := hostWrite(t, h, method, "/upstream"+path, body)
	resp.Body.Close()
	id := resp.Header.Get("Synctray-Action")
	if id == "" || resp.Header.Get("Synctray-State") == string(outbox.Queued) {
		t.Fatalf("%s %s = %d (%s), want the upstream's answer", method, path, resp.StatusCode, resp.Header.Get("Synctray-State"))
	}
	return id
}

func TestOutboxListAndShowPrintHTTPActionsAsRequests(t *testing.T) {
	up := idemserver.Start(t)
	dir := t.TempDir()
	addr, h := runningHostWith(t, localserver.Config{DataDir: dir, UpstreamURL: up.URL, UpstreamProtocol: localserver.ProtocolHTTP})
	created := upstreamWrite(t, h, "POST", "/todos", `{"title":"milk"}`)
	refused := upstreamWrite(t, h, "PUT", "/todos/7", `{"title":"invalid"}`) // idemserver refuses it: 422
	// A path that puts the "→" of its summary across the list's cut at 60 bytes.
	long := upstreamWrite(t, h, "POST", "/"+strings.Repeat("a", 51), `{}`)
	testsupport.WaitFor(t, "all three recorded", func() bool {
		code, out, _ := run(t, "outbox", "status", "--data-dir", dir, "--addr", addr)
		return code == 0 && strings.Contains(out, "syncing 0") && strings.Contains(out, "failed 1")
	})

	code, out, errOut := run(t, "outbox", "list", "--data-dir", dir, "--addr", addr)
	if code != 0 {
		t.Fatalf("outbox list: exit %d: %s", code, errOut)
	}
	for _, want := range []string{created + " ", "POST /todos → 201 Created", refused + " ", "PUT /todos/7 → failed: 422 title is required",
		"Upstream refused it (422 Unprocessable Entity): title is", long + " "} {
		if !strings.Contains(out, want) {
			t.Errorf("outbox list lacks %q:\n%s", want, out)
		}
	}
	if !utf8.ValidString(out) {
		t.Errorf("outbox list printed invalid UTF-8 (a summary cut inside a character):\n%q", out)
	}

	code, out, errOut = run(t, "outbox", "show", refused, "--data-dir", dir, "--addr", addr)
	if code != 0 {
		t.Fatalf("outbox show: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"action " + refused + "  failed", "summary:  PUT /todos/7 → failed: 422 title is required",
		"request and answer:\n  PUT /todos/7\n  Content-Type: application/json\n", `  "title": "invalid"`,
		"  answer: 422 Unprocessable Entity\n", `    "message": "title is required"`, "history:\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("outbox show lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "outbox", "show", created, "--data-dir", dir, "--addr", addr)
	if code != 0 || !strings.Contains(out, "summary:  POST /todos → 201 Created") || !strings.Contains(out, "  answer: 201 Created\n") ||
		!strings.Contains(out, "  Location: /todos/1\n") {
		t.Errorf("outbox show %s: exit %d:\n%s\nwant the summary and the upstream's answer with its Location", created, code, out)
	}
}
