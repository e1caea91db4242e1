package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/pgtest"
	"synctray/upstream"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const dbSecret = "s3cr3t-pw"

func TestTheUpstreamRefusesABadDatabaseConfiguration(t *testing.T) {
	wide := writeFile(t, "dsn-wide", "postgres://u:"+dbSecret+"@127.0.0.1/db\n")
	if err := os.Chmod(wide, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  string // SYNCTRAY_DB
		want string
	}{
		{"--db and --db-file", []string{"--db", "postgres://h/db", "--db-file", writeFile(t, "dsn", "postgres://h/db")}, "", "--db and --db-file are both set"},
		{"a DSN file others can read", []string{"--db-file", wide}, "", "is readable by other users ("},
		{"a missing DSN file", []string{"--db-file", filepath.Join(t.TempDir(), "nope")}, "", "database DSN file: check access to"},
		{"an empty DSN file", []string{"--db-file", writeFile(t, "empty", " \n")}, "", "is empty"},
		{"not a PostgreSQL DSN", []string{"--db", "mysql://u:" + dbSecret + "@h/db"}, "", "want a postgres:// URL or a key=value DSN"},
		{"a DSN that does not parse", []string{"--db", "postgres://u:" + dbSecret + "@127.0.0.1:notaport/db"}, "", "--db: invalid database DSN postgres://u:xxxxx@127.0.0.1:notaport/db: invalid port"},
		{"a bad DSN from SYNCTRAY_DB", nil, "host=h password=" + dbSecret + " sslmode=sometimes", "sslmode is invalid"},
		{"a database nobody serves", []string{"--db", "postgres://u:" + dbSecret + "@127.0.0.1:1/db?sslmode=disable"}, "", "connection refused"},
		{"a pool of 0", []string{"--db", "postgres://h/db", "--db-pool", "0"}, "", "--db-pool 0: want 1 to 1000"},
		{"a pool without --db", []string{"--db-pool", "5"}, "", "--db-pool needs --db"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("SYNCTRAY_DB", c.env)
			} else {
				t.Setenv("SYNCTRAY_DB", "")
				os.Unsetenv("SYNCTRAY_DB")
			}
			dir := filepath.Join(t.TempDir(), "up")
			args := append([]string{"upstream", "--data-dir", dir, "--addr", "127.0.0.1:0", "--insecure-no-auth"}, c.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out testsupport.SyncBuffer
			code := Main(ctx, args, &out, &out)
			got := out.String()
			if code != 1 || !strings.Contains(got, c.want) {
				t.Fatalf("exit %d, want 1; output:\n%s\nwant it to contain %q", code, got, c.want)
			}
			if strings.Contains(got, dbSecret) {
				t.Fatalf("the output shows the password:\n%s", got)
			}
			// Log lines may come first; the error is one short line.
			lines := strings.Split(strings.TrimSpace(got), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "synctray") || len(last) > 300 || strings.Contains(got, "panic") {
				t.Fatalf("want a short error line last, got:\n%s", got)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the refused upstream created its data dir (%v)", err)
			}
		})
	}
}

// startUpstreamCLI runs `synctray upstream args…` until the test ends and
// returns its URL and its log.
func startUpstreamCLI(t *testing.T, args ...string) (string, *testsupport.SyncBuffer) {
	t.Helper()
	url, logs, stop := runUpstreamCLI(t, args...)
	t.Cleanup(func() {
		if code := stop(); code != 0 {
			t.Errorf("upstream exit %d:\n%s", code, logs.String())
		}
	})
	return url, logs
}

// runUpstreamCLI runs `synctray upstream args…` and returns its URL, its
// log, and stop, which cancels its context (as SIGTERM does) and returns
// its exit code. stop may be called more than once.
func runUpstreamCLI(t *testing.T, args ...string) (string, *testsupport.SyncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testsupport.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"upstream", "--addr", "127.0.0.1:0"}, args...), stdoutW, logs)
		stdoutW.Close()
	}()
	var once sync.Once
	var code int
	stop := func() int {
		once.Do(func() {
			cancel()
			code = <-done
			stdoutR.Close()
		})
		return code
	}
	line := make([]byte, 256)
	n, err := stdoutR.Read(line)
	if err != nil {
		stop()
		t.Fatalf("no start line: %v\n%s", err, logs.String())
	}
	return strings.TrimSpace(strings.TrimPrefix(string(line[:n]), "synctray upstream is running at ")), logs, stop
}

func TestTheUpstreamKeepsItsStoreInPostgreSQL(t *testing.T) {
	dsn := pgtest.DB(t)
	t.Setenv("SYNCTRAY_DB", "")
	os.Unsetenv("SYNCTRAY_DB")
	password := ""
	if cfg, err := pgx.ParseConfig(dsn); err == nil {
		password = cfg.Password
	}
	dsnFile := writeFile(t, "dsn", dsn+"\n")

	t.Run("migrate brings the schema up to date and exits", func(t *testing.T) {
		for _, want := range []string{"from schema version 0 to 1", "is up to date (schema version 1)"} {
			var out testsupport.SyncBuffer
			if code := Main(context.Background(), []string{"upstream", "--db-file", dsnFile, "migrate"}, &out, &out); code != 0 || !strings.Contains(out.String(), want) {
				t.Fatalf("exit %d:\n%s\nwant %q", code, out.String(), want)
			}
			if password != "" && strings.Contains(out.String(), password) {
				t.Fatalf("the output shows the password:\n%s", out.String())
			}
		}
	})

	t.Run("instances on one database apply a key once and count it once", func(t *testing.T) {
		tok := writeFile(t, "tok", "t0ken")
		dirA, dirB := t.TempDir(), t.TempDir()
		a, logsA := startUpstreamCLI(t, "--data-dir", dirA, "--token-file", tok, "--db-file", dsnFile, "--db-pool", "3")
		t.Setenv("SYNCTRAY_DB", dsn)
		b, logsB := startUpstreamCLI(t, "--data-dir", dirB, "--token-file", tok)
		for i, base := range []string{a, b, a} {
			c := &upstream.Client{BaseURL: base, Token: "t0ken", HTTP: http.DefaultClient}
			res, err := c.Send(context.Background(), []upstream.Action{{Key: "k1", Type: "note", Payload: json.RawMessage(`{}`)}})
			if err != nil {
				t.Fatal(err)
			}
			want := upstream.StatusDuplicate
			if i == 0 {
				want = upstream.StatusApplied
			}
			if res[0].Status != want {
				t.Fatalf("send %d: %s, want %s", i, res[0].Status, want)
			}
		}
		st, err := (&upstream.Client{BaseURL: b, Token: "t0ken", HTTP: http.DefaultClient}).Stats(context.Background())
		if err != nil || st != (upstream.Stats{Applied: 1, Duplicates: 2}) {
			t.Fatalf("stats %+v, %v", st, err)
		}
		for _, logs := range []string{logsA.String(), logsB.String()} {
			if !strings.Contains(logs, "the store is in PostgreSQL") || password != "" && strings.Contains(logs, password) {
				t.Fatalf("log:\n%s\nwant the database named without its password", logs)
			}
		}
		if entries, _ := os.ReadDir(dirA); len(entries) != 0 {
			t.Fatalf("with --db the data dir holds %v", entries)
		}
	})

	t.Run("a password in --db draws a warning", func(t *testing.T) {
		if password == "" {
			t.Skip("the test server's DSN has no password")
		}
		_, logs := startUpstreamCLI(t, "--data-dir", t.TempDir(), "--insecure-no-auth", "--db", dsn)
		if !strings.Contains(logs.String(), "use --db-file or SYNCTRAY_DB") || strings.Contains(logs.String(), password) {
			t.Fatalf("log:\n%s\nwant a warning, without the password", logs.String())
		}
	})

	t.Run("start-up refuses a database of a newer schema", func(t *testing.T) {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `UPDATE synctray_schema SET version = version + 1`); err != nil {
			t.Fatal(err)
		}
		for _, extra := range [][]string{nil, {"migrate"}} {
			var out testsupport.SyncBuffer
			args := append([]string{"upstream", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--insecure-no-auth", "--db-file", dsnFile}, extra...)
			if code := Main(context.Background(), args, &out, &out); code != 1 || !strings.Contains(out.String(), "written by a newer synctray") {
				t.Fatalf("%v: exit %d:\n%s", extra, code, out.String())
			}
		}
	})
}

func TestMigrateTheSQLiteStore(t *testing.T) {
	t.Setenv("SYNCTRAY_DB", "")
	os.Unsetenv("SYNCTRAY_DB")
	dir := t.TempDir()
	var out testsupport.SyncBuffer
	if code := Main(context.Background(), []string{"upstream", "--data-dir", dir, "migrate"}, &out, &out); code != 0 || !strings.Contains(out.String(), "is up to date") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "upstream.db")); err != nil {
		t.Fatal(err)
	}
}
