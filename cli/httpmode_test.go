package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport"
)

func TestServeChecksTheHTTPModeFlags(t *testing.T) {
	open := filepath.Join(t.TempDir(), "headers")
	os.WriteFile(open, []byte("Authorization: Bearer x\n"), 0o644)
	os.Chmod(open, 0o644)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--upstream-protocol", "http"}, "--upstream-protocol http needs --upstream URL"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--upstream-protocol", "grpc"}, `upstream protocol "grpc"`},
		{[]string{"--upstream", "http://127.0.0.1:1", "--upstream-header-file", empty}, "need --upstream-protocol http"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--upstream-protocol", "http", "--upstream-header-file", open}, "readable by other users"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--upstream-protocol", "http", "--upstream-header-file", empty}, "no headers in the file"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--upstream-protocol", "http", "--upstream-concurrency", "0"}, "--upstream-concurrency 0: want 1 to 64"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--upstream-protocol", "http", "--forward-header", "Cookie"}, "forward header Cookie: never stored"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0"}, c.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var out testsupport.SyncBuffer
			if code := Main(ctx, args, &out, &out); code != 1 || !strings.Contains(out.String(), c.want) {
				t.Fatalf("exit %d, want 1; output:\n%s\nwant it to contain %q", code, out.String(), c.want)
			}
		})
	}
}
