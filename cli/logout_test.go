package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver"
)

func TestLogoutAllSignsOutTheRunningHostsBrowsers(t *testing.T) {
	dir := t.TempDir()
	h, err := localserver.Open(localserver.Config{DataDir: dir, Addr: "127.0.0.1:0", UpstreamURL: "http://127.0.0.1:1",
		WorkOffline: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	get := func() int {
		t.Helper()
		resp, err := browser.Get(h.URL() + "/api/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if resp, err := browser.Get(h.LoginURL()); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if code := get(); code != 200 {
		t.Fatalf("status with the session cookie = %d, want 200", code)
	}

	var out bytes.Buffer
	addr := strings.TrimPrefix(h.URL(), "http://")
	if code := Main(context.Background(), []string{"logout", "--all", "--data-dir", dir, "--addr", addr}, &out, &out); code != 0 {
		t.Fatalf("logout --all: exit %d\n%s", code, out.String())
	}
	if code := get(); code != 401 {
		t.Fatalf("status with the cookie after logout --all = %d, want 401", code)
	}
}

func TestLogoutAllRotatesTheKeyFileWhenNoHostRuns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "session-key")
	old := strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	var out bytes.Buffer
	if code := Main(context.Background(), []string{"logout", "--all", "--data-dir", dir, "--addr", addr}, &out, &out); code != 0 {
		t.Fatalf("logout --all: exit %d\n%s", code, out.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) == old || len(strings.TrimSpace(string(b))) != 64 {
		t.Fatalf("session-key = %q, want a new 64-character key", b)
	}
	testsupport.CheckPrivate(t, path)
	if !strings.Contains(out.String(), "rotated") {
		t.Errorf("output %q does not say the key was rotated", out.String())
	}
	if _, err := localserver.LoadOrCreateSecret(path); err != nil {
		t.Errorf("the host cannot load the rotated key: %v", err)
	}
}

func TestLogoutWithoutAllIsAUsageError(t *testing.T) {
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"logout", "--data-dir", t.TempDir()}, &out, &out); code != 2 || !strings.Contains(out.String(), "--all") {
		t.Fatalf("exit %d, want 2 with a usage that names --all:\n%s", code, out.String())
	}
}
