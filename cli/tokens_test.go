package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/upstream"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const cmdlineWarning = "visible to every user of this machine"

func TestTheStandaloneUpstreamRefusesToStartWithoutAToken(t *testing.T) {
	empty := writeFile(t, "empty", "\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no token at all", nil, "the upstream needs a token: give --token-file FILE (or SYNCTRAY_TOKEN), or serve without one with --insecure-no-auth"},
		{"an empty token file", []string{"--token-file", empty}, "is empty"},
		{"a missing token file", []string{"--token-file", filepath.Join(t.TempDir(), "nope")}, "read token file"},
		{"a token and its file", []string{"--token", "abc", "--token-file", empty}, "--token and --token-file are both set"},
		{"a token and --insecure-no-auth", []string{"--token-file", writeFile(t, "tok", "abc"), "--insecure-no-auth"}, "--insecure-no-auth and a token are both set"},
		{"a token with a space", []string{"--token", "a b"}, "printable ASCII"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SYNCTRAY_TOKEN", "")
			os.Unsetenv("SYNCTRAY_TOKEN")
			dir := filepath.Join(t.TempDir(), "up")
			args := append([]string{"upstream", "--data-dir", dir, "--addr", "127.0.0.1:0"}, c.args...)
			// An upstream that wrongly starts runs until this deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var out testsupport.SyncBuffer
			if code := Main(ctx, args, &out, &out); code != 1 || !strings.Contains(out.String(), c.want) {
				t.Fatalf("exit %d, want 1; output:\n%s\nwant it to contain %q", code, out.String(), c.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the refused upstream created its data dir (%v)", err)
			}
		})
	}
}

func TestTheStandaloneUpstreamStartsWithATokenOrTheNamedOptOut(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		env      string
		warnings []string // in the log
		quiet    []string // not in the log
	}{
		{"a token flag draws a warning naming the safer ways", []string{"--token", "t0ken"}, "", []string{cmdlineWarning, "--token-file or SYNCTRAY_TOKEN"}, nil},
		{"a token file draws none", []string{"--token-file", writeFile(t, "tok", "t0ken\n")}, "", nil, []string{cmdlineWarning, "level=WARN"}},
		{"SYNCTRAY_TOKEN draws none", nil, "t0ken", nil, []string{cmdlineWarning, "level=WARN"}},
		{"--insecure-no-auth warns that anyone can read and write", []string{"--insecure-no-auth"}, "", []string{"serving without a token"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("SYNCTRAY_TOKEN", c.env)
			} else {
				t.Setenv("SYNCTRAY_TOKEN", "")
				os.Unsetenv("SYNCTRAY_TOKEN")
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // start, then stop at once
			var out testsupport.SyncBuffer
			args := append([]string{"upstream", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"}, c.args...)
			if code := Main(ctx, args, &out, &out); code != 0 {
				t.Fatalf("exit %d, want 0; output:\n%s", code, out.String())
			}
			for _, w := range c.warnings {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, q := range c.quiet {
				if strings.Contains(out.String(), q) {
					t.Errorf("output has %q:\n%s", q, out.String())
				}
			}
		})
	}
}

// TestTheHostSendsTheUpstreamTokenFromEveryPlace runs serve against an
// upstream that requires a token and checks that the host sends it,
// whether it came from the flag, the file or the environment.
func TestTheHostSendsTheUpstreamTokenFromEveryPlace(t *testing.T) {
	const tok = "s3cret-t0ken"
	cases := []struct {
		name string
		args []string
		env  string
		warn bool
	}{
		{"from SYNCTRAY_UPSTREAM_TOKEN, without a warning", nil, tok, false},
		{"from --upstream-token-file, without a warning", []string{"--upstream-token-file", writeFile(t, "tok", tok+"\n")}, "", false},
		{"from --upstream-token, with a warning", []string{"--upstream-token", tok}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("SYNCTRAY_UPSTREAM_TOKEN", c.env)
			} else {
				t.Setenv("SYNCTRAY_UPSTREAM_TOKEN", "")
				os.Unsetenv("SYNCTRAY_UPSTREAM_TOKEN")
			}
			srv, _ := testupstream.New(t, upstream.Options{Token: tok})
			authorized := make(chan struct{})
			var once sync.Once
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "Bearer "+tok {
					once.Do(func() { close(authorized) })
				}
				srv.ServeHTTP(w, r)
			}))
			t.Cleanup(ts.Close)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out testsupport.SyncBuffer
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--upstream", ts.URL, "--log-level", "warn"}, c.args...)
			done := make(chan int, 1)
			go func() { done <- Main(ctx, args, &out, &out) }()
			select {
			case <-authorized:
			case code := <-done:
				t.Fatalf("serve exited with %d before reaching the upstream:\n%s", code, out.String())
			case <-time.After(20 * time.Second):
				t.Fatalf("the upstream never got the token; output:\n%s", out.String())
			}
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("serve exit %d:\n%s", code, out.String())
			}
			if got := strings.Contains(out.String(), cmdlineWarning); got != c.warn {
				t.Fatalf("warning shown: %v, want %v; output:\n%s", got, c.warn, out.String())
			}
			if c.warn && !strings.Contains(out.String(), "--upstream-token-file or SYNCTRAY_UPSTREAM_TOKEN") {
				t.Fatalf("the warning does not name the file flag and the env var:\n%s", out.String())
			}
		})
	}
}

func TestServeRefusesABadStartConfiguration(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "127.0.0.1:7760"}, `upstream URL "127.0.0.1:7760" is not an absolute URL`},
		{[]string{"--upstream", "not a url"}, `upstream URL "not a url" is not an absolute URL`},
		{[]string{"--upstream", "ftp://x"}, `scheme "ftp" is not supported: want http or https`},
		{[]string{"--upstream", "http://127.0.0.1:1", "--batch-size", "1001"}, "--batch-size 1001: want 1 to 1000"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--batch-size", "0"}, "--batch-size 0: want 1 to 1000"},
		{[]string{"--batch-size", "-5"}, "--batch-size -5: want 1 to 1000"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--upstream-token", "x", "--upstream-token-file", "/dev/null"}, "--upstream-token and --upstream-token-file are both set"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0"}, c.args...)
			// A start that is wrongly accepted runs until this deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var out testsupport.SyncBuffer
			code := Main(ctx, args, &out, &out)
			if code != 1 || !strings.Contains(out.String(), c.want) {
				t.Fatalf("exit %d, want 1; output:\n%s\nwant it to contain %q", code, out.String(), c.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("a refused start created the data dir (%v)", err)
			}
		})
	}
}

func TestTheStandaloneUpstreamTakesAllowedHosts(t *testing.T) {
	t.Run("an entry that is not a host name is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var out testsupport.SyncBuffer
		args := []string{"upstream", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--insecure-no-auth", "--allowed-hosts", "http://proxy.example/"}
		if code := Main(ctx, args, &out, &out); code != 1 || !strings.Contains(out.String(), "is not a host name or name:port") {
			t.Fatalf("exit %d, want 1:\n%s", code, out.String())
		}
	})
	t.Run("a listed name is accepted and others are refused", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stdoutR, stdoutW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdoutR.Close()
		var logs testsupport.SyncBuffer
		args := []string{"upstream", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--token-file", writeFile(t, "tok", "t0ken"), "--allowed-hosts", "proxy.example, other.example:8443"}
		done := make(chan int, 1)
		go func() { done <- Main(ctx, args, stdoutW, &logs); stdoutW.Close() }()
		line := make([]byte, 256)
		n, err := stdoutR.Read(line)
		if err != nil {
			t.Fatalf("no start line: %v\n%s", err, logs.String())
		}
		base := strings.TrimSpace(strings.TrimPrefix(string(line[:n]), "synctray upstream is running at "))
		for host, want := range map[string]int{"proxy.example": 200, "other.example:8443": 200, "other.example": 403, "evil.example": 403} {
			req, _ := http.NewRequest("GET", base+"/v1/stats", nil)
			req.Host = host
			req.Header.Set("Authorization", "Bearer t0ken")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
			}
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exit %d:\n%s", code, logs.String())
		}
	})
}
