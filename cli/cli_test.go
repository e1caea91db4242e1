package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestMainUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "synctray upstream [flags]"},
		{[]string{"help"}, 0, "synctray outbox COMMAND"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"serve", "--help"}, 0, "-work-offline"},
		{[]string{"serve", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"outbox"}, 2, "cancel-queued"},
		{[]string{"outbox", "show"}, 2, "want 1 argument(s)"},
		{[]string{"outbox", "show", "x", "--data-dir", "/nonexistent"}, 2, `action id "x" is not a positive integer`},
		{[]string{"outbox", "list", "--data-dir", "/nonexistent"}, 1, "has synctray run with this --data-dir?"},
		{[]string{"upstream", "--fail-rate", "2", "--data-dir", "/nonexistent"}, 1, "between 0 and 1"},
		{[]string{"serve", "--log-level", "loud", "--data-dir", "/nonexistent"}, 1, "--log-level"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			code := Main(context.Background(), c.args, &out, &out)
			if code != c.code || !strings.Contains(out.String(), c.want) {
				t.Fatalf("exit %d, want %d; output:\n%s\nwant it to contain %q", code, c.code, out.String(), c.want)
			}
		})
	}
}

func TestParseReadsEnvironment(t *testing.T) {
	t.Setenv("SYNCTRAY_DATA_DIR", "/from/env")
	t.Setenv("SYNCTRAY_ADDR", "127.0.0.1:9")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c common
	c.register(fs, "127.0.0.1:7717")
	pos, err := parse(fs, []string{"show", "12", "--addr", "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.dataDir != "/from/env" || c.addr != "127.0.0.1:1" || strings.Join(pos, ",") != "show,12" {
		t.Fatalf("dataDir %q addr %q pos %v; want the env's data dir, the flag's addr (flags win), [show 12]", c.dataDir, c.addr, pos)
	}
	t.Setenv("SYNCTRAY_LOG_LEVEL", "x")
	t.Setenv("SYNCTRAY_BATCH_SIZE", "many")
	fs2 := flag.NewFlagSet("y", flag.ContinueOnError)
	fs2.SetOutput(io.Discard)
	fs2.Int("batch-size", 1, "")
	if _, err := parse(fs2, nil); err == nil || !strings.Contains(err.Error(), "SYNCTRAY_BATCH_SIZE") {
		t.Fatalf("err = %v, want one naming SYNCTRAY_BATCH_SIZE", err)
	}
}
