package main

import (
	"synctray/internal/testsupport"

	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeHostsTheAppDirGivenWithApp(t *testing.T) {
	app := t.TempDir()
	const index = "<!doctype html><title>my own app</title>"
	if err := os.WriteFile(filepath.Join(app, "index.html"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, base, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, c := range []struct {
		name string
		args []string
		env  []string
	}{
		{"from --app", []string{"--app", app}, nil},
		{"from SYNCTRAY_APP", nil, []string{"SYNCTRAY_APP=" + app}},
	} {
		t.Run("serves its index.html at / and to navigations, "+c.name, func(t *testing.T) {
			dir, addr := t.TempDir(), testsupport.FreeAddr(t)
			logf := hostLog(t)
			for _, kv := range c.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			p := startProc(t, logf, append([]string{"serve", "--data-dir", dir, "--addr", addr, "--upstream", "http://127.0.0.1:1", "--log-level", "warn"}, c.args...)...)
			base := "http://" + addr
			waitHealthy(t, base, p)
			for _, path := range []string{"/", "/todos/7"} {
				if code, body := get(t, base, path); code != 200 || body != index {
					t.Fatalf("GET %s = %d %q, want 200 and the app dir's index.html", path, code, body)
				}
			}
		})
	}

	t.Run("serve and the tray app refuse with exit 1 an app dir that would shadow a host path, and one that does not exist", func(t *testing.T) {
		shadow := t.TempDir()
		if err := os.Mkdir(filepath.Join(shadow, "synctray"), 0o755); err != nil {
			t.Fatal(err)
		}
		for dir, want := range map[string]string{
			shadow:                                `app dir ` + shadow + `: its directory "synctray" would shadow the host's own /synctray/`,
			filepath.Join(t.TempDir(), "missing"): "does not exist",
		} {
			for _, command := range [][]string{{"serve"}, {}} {
				// A start that is wrongly accepted runs until killed here.
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				args := append(command, "--data-dir", t.TempDir(), "--addr", testsupport.FreeAddr(t), "--app", dir)
				cmd := exec.CommandContext(ctx, binary, args...)
				cmd.Env = append(os.Environ(), "DISPLAY=") // the tray app without a display runs as serve
				out, _ := cmd.CombinedOutput()
				if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), want) {
					t.Fatalf("synctray %v: exit %d, want 1; output:\n%s\nwant it to contain %q", args, cmd.ProcessState.ExitCode(), out, want)
				}
			}
		}
	})
}
