package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/upstream"
)

func TestLogFormat(t *testing.T) {
	t.Run("serve --log-format json writes one JSON object per line", func(t *testing.T) {
		_, _, upURL := testupstream.Start(t, upstream.Options{})
		var stdout, stderr testsupport.SyncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, []string{"serve", "--log-format", "json", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0",
				"--upstream", upURL, "--work-offline"}, &stdout, &stderr)
		}()
		testsupport.WaitFor(t, "the host to start", func() bool { return strings.Contains(stdout.String(), "synctray is running") })
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
		}
		lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
		var msgs []string
		for _, l := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("log line %q is not JSON: %v", l, err)
			}
			if rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
				t.Fatalf("log line %q lacks time, level or msg", l)
			}
			msgs = append(msgs, rec["msg"].(string))
		}
		joined := strings.Join(msgs, "\n")
		if !strings.Contains(joined, "synctray host listening") || !strings.Contains(joined, "synctray host stopped") {
			t.Fatalf("messages %q, want the host's start and stop", msgs)
		}
	})

	t.Run("a format other than text or json is refused, naming both", func(t *testing.T) {
		var out testsupport.SyncBuffer
		code := Main(context.Background(), []string{"serve", "--log-format", "xml", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"}, &out, &out)
		if code != 1 || !strings.Contains(out.String(), `--log-format "xml": want text or json`) {
			t.Fatalf("exit %d, output %q; want 1 and the reason", code, out.String())
		}
	})

	t.Run("text stays the default", func(t *testing.T) {
		fs := newFlagSet("x", "x", &testsupport.SyncBuffer{})
		var c common
		c.register(fs, "127.0.0.1:1")
		if _, err := parse(fs, nil); err != nil {
			t.Fatal(err)
		}
		var out testsupport.SyncBuffer
		log, err := c.logger(&out)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hello", "n", 1)
		if got := out.String(); !strings.Contains(got, "level=INFO msg=hello n=1") {
			t.Fatalf("default log line %q, want key=value text", got)
		}
	})
}
