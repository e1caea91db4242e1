package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"synctray/internal/testsupport/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv("PGTEST_CRASH_CHILD") == "1" {
		// Start a cluster, say where, and die without stopping it.
		dsn, _, err := pgtest.Start()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Println(dsn)
		os.Exit(1)
	}
	os.Exit(pgtest.Main(m))
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestEachTestGetsItsOwnDatabase(t *testing.T) {
	ctx := context.Background()
	a, b := connect(t, pgtest.DB(t)), connect(t, pgtest.DB(t))
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the table of one database is in the other: %d, %v", n, err)
	}
	var fsync string
	if err := a.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "on" {
		t.Fatalf("fsync = %q, %v; want on", fsync, err)
	}
}

func TestTheClusterStopsWhenTheTestBinaryDies(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skip("using an existing server")
	}
	pgtest.DB(t) // skips without PostgreSQL
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGTEST_CRASH_CHILD=1")
	out, _ := cmd.Output()
	dsn := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dsn, "postgres://") {
		t.Fatalf("child: %s", out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		cancel()
		if err != nil {
			break
		}
		conn.Close(context.Background())
		if time.Now().After(deadline) {
			t.Fatal("the cluster of a dead test binary still runs after 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
