package sqlitedb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"synctray/internal/sqlitedb"
	"synctray/internal/testsupport"
)

var ctx = context.Background()

var schema = []string{
	`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT;
	 CREATE INDEX notes_body ON notes (body);`,
	`ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT '';`,
}

func mustOpen(tb testing.TB, path string, opts sqlitedb.Options) *sqlitedb.DB {
	tb.Helper()
	db, err := sqlitedb.Open(ctx, path, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestOpen(t *testing.T) {
	t.Run("a path with ? # and % works and is the file named", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), testsupport.OddName("a dir"))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "x.db")
		db := mustOpen(t, path, sqlitedb.Options{Migrations: schema})
		if _, err := db.W.ExecContext(ctx, `INSERT INTO notes (body) VALUES ('hi')`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db = mustOpen(t, path, sqlitedb.Options{Migrations: schema})
		var n int
		if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows after reopen = %d, %v; want 1", n, err)
		}
		entries, _ := os.ReadDir(filepath.Dir(dir))
		if len(entries) != 1 {
			t.Fatalf("the parent holds %d entries, want only the data dir (the path was cut at a special character)", len(entries))
		}
	})

	t.Run("the pragmas are set on the writer and on every reader", func(t *testing.T) {
		db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), sqlitedb.Options{})
		for name, pool := range map[string]*sql.DB{"writer": db.W, "reader": db.R} {
			for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "5000"} {
				var got string
				if err := pool.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
					t.Errorf("%s: %s = %q (%v), want %q", name, pragma, got, err, want)
				}
			}
		}
		if _, err := db.R.ExecContext(ctx, `CREATE TABLE x (a)`); err == nil {
			t.Error("the read pool could write")
		}
	})

	t.Run("migrations run in order, once, and set user_version", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		db := mustOpen(t, path, sqlitedb.Options{Migrations: schema[:1]})
		db.Close()
		db = mustOpen(t, path, sqlitedb.Options{Migrations: schema})
		var v int
		db.W.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
		if v != 2 {
			t.Fatalf("user_version = %d, want 2", v)
		}
		if _, err := db.W.ExecContext(ctx, `INSERT INTO notes (body, tag) VALUES ('a', 'b')`); err != nil {
			t.Fatalf("the second migration did not run: %v", err)
		}
	})

	t.Run("a failed migration leaves the earlier ones and the version", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		mustOpen(t, path, sqlitedb.Options{Migrations: schema[:1]}).Close()
		_, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Migrations: []string{schema[0], `ALTER TABLE notes ADD COLUMN x TEXT; SELECT nonsense FROM nowhere;`}})
		if err == nil || !strings.Contains(err.Error(), "migrate schema to version 2") {
			t.Fatalf("err = %v, want a failed migration to version 2", err)
		}
		db := mustOpen(t, path, sqlitedb.Options{Migrations: schema[:1]})
		var v, cols int
		db.W.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
		db.W.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_info('notes')").Scan(&cols)
		if v != 1 || cols != 2 {
			t.Fatalf("after a failed migration: user_version %d, %d columns; want 1 and 2 (rolled back)", v, cols)
		}
	})

	t.Run("a newer schema is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		mustOpen(t, path, sqlitedb.Options{Migrations: schema}).Close()
		if _, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Migrations: schema[:1]}); !errors.Is(err, sqlitedb.ErrNewerSchema) || !strings.Contains(err.Error(), "newer synctray") {
			t.Fatalf("err = %v, want a newer-schema refusal", err)
		}
	})

	t.Run("files are created 0600, SQLite's -wal and -shm included", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		db := mustOpen(t, path, sqlitedb.Options{Migrations: schema})
		db.W.ExecContext(ctx, `INSERT INTO notes (body) VALUES ('x')`)
		for _, p := range sqlitedb.Files(path) {
			testsupport.CheckPrivate(t, p)
		}
	})

	t.Run("existing 0644 files are narrowed to 0600", func(t *testing.T) {
		testsupport.UnixModes(t)
		path := filepath.Join(t.TempDir(), "x.db")
		db := mustOpen(t, path, sqlitedb.Options{Migrations: schema})
		db.W.ExecContext(ctx, `INSERT INTO notes (body) VALUES ('x')`)
		for _, p := range sqlitedb.Files(path) {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		db2 := mustOpen(t, path, sqlitedb.Options{Migrations: schema})
		db2.W.ExecContext(ctx, `INSERT INTO notes (body) VALUES ('y')`)
		for _, p := range sqlitedb.Files(path) {
			if m := testsupport.Perm(t, p); m != 0o600 {
				t.Errorf("%s: mode %v, want 0600", filepath.Base(p), m)
			}
		}
	})

	t.Run("a file it created is removed when opening fails", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		if _, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Migrations: []string{`CREATE TABLE broken (`}}); err == nil {
			t.Fatal("Open succeeded with a broken migration")
		}
		for _, p := range sqlitedb.Files(path) {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s left behind after a failed open", filepath.Base(p))
			}
		}
	})
}

// fill makes a database whose notes table spans many pages and closes it
// (which checkpoints the WAL into the main file).
func fill(tb testing.TB, path string) {
	tb.Helper()
	db := mustOpen(tb, path, sqlitedb.Options{Migrations: schema})
	tx, _ := db.W.BeginTx(ctx, nil)
	for i := 0; i < 3000; i++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notes (body) VALUES (?)`, fmt.Sprintf("%05d %s", i, strings.Repeat("x", 100))); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
}

func TestDamage(t *testing.T) {
	t.Run("a file that is not a database is refused as damaged", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		os.WriteFile(path, []byte(strings.Repeat("this is not SQLite ", 500)), 0o600)
		_, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Migrations: schema})
		if !errors.Is(err, sqlitedb.ErrDamaged) || !sqlitedb.IsCorrupt(err) {
			t.Fatalf("err = %v, want ErrDamaged", err)
		}
		if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "this is not SQLite") {
			t.Fatal("the damaged file was changed or removed")
		}
	})

	t.Run("a damaged page fails the quick check at open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		fill(t, path)
		testsupport.DamagePage(t, path, 40)
		_, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Migrations: schema, QuickCheck: true})
		if !errors.Is(err, sqlitedb.ErrDamaged) || !strings.Contains(err.Error(), "quick check") {
			t.Fatalf("err = %v, want ErrDamaged from the quick check", err)
		}
	})

	t.Run("a healthy database passes the quick check", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		fill(t, path)
		mustOpen(t, path, sqlitedb.Options{Migrations: schema, QuickCheck: true})
	})

	t.Run("IsCorrupt tells SQLITE_CORRUPT from a damaged page at run time", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.db")
		fill(t, path)
		testsupport.DamagePage(t, path, 40)
		db := mustOpen(t, path, sqlitedb.Options{Migrations: schema})
		var n int
		err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM notes NOT INDEXED WHERE body LIKE '%y%'`).Scan(&n)
		if err == nil {
			err = db.R.QueryRowContext(ctx, `SELECT count(*) FROM notes INDEXED BY notes_body WHERE body > ''`).Scan(&n)
		}
		if !sqlitedb.IsCorrupt(err) {
			t.Fatalf("reading a damaged table: err = %v, want one IsCorrupt recognises", err)
		}
		if sqlitedb.IsDiskFull(err) {
			t.Fatal("a corrupt page was taken for a full disk")
		}
	})
}

func TestIsDiskFull(t *testing.T) {
	t.Run("SQLITE_FULL is a full disk", func(t *testing.T) {
		db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), sqlitedb.Options{Migrations: schema})
		if _, err := db.W.ExecContext(ctx, `PRAGMA max_page_count = 8`); err != nil {
			t.Fatal(err)
		}
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			_, err = db.W.ExecContext(ctx, `INSERT INTO notes (body) VALUES (?)`, strings.Repeat("z", 500))
		}
		if !sqlitedb.IsDiskFull(fmt.Errorf("enqueue: %w", err)) {
			t.Fatalf("err = %v, want one IsDiskFull recognises", err)
		}
		if sqlitedb.IsCorrupt(err) {
			t.Fatal("a full database was taken for a corrupt one")
		}
	})

	t.Run("ENOSPC from a file write is a full disk", func(t *testing.T) {
		err := &os.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}
		if !sqlitedb.IsDiskFull(fmt.Errorf("save cursor: %w", err)) {
			t.Fatal("ENOSPC not recognised")
		}
	})

	t.Run("other errors are neither", func(t *testing.T) {
		db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), sqlitedb.Options{Migrations: schema})
		_, constraint := db.W.ExecContext(ctx, `INSERT INTO notes (id, body) VALUES (1, 'a'), (1, 'b')`)
		for _, err := range []error{nil, errors.New("disk full"), context.Canceled, constraint} {
			if sqlitedb.IsDiskFull(err) || sqlitedb.IsCorrupt(err) {
				t.Errorf("%v: taken for a full disk or a corrupt store", err)
			}
		}
	})
}
