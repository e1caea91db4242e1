// Package sqlitedb opens synctray's SQLite databases (the outbox, the push
// subscriptions, the reference upstream's store) one way, with
// github.com/mattn/go-sqlite3: a DSN with the path escaped and the pragmas
// as parameters, so every pooled connection gets them (WAL,
// synchronous=FULL, busy_timeout, foreign keys), checked after opening; an
// optional PRAGMA quick_check; versioned migrations (PRAGMA user_version),
// each in its own transaction; files created with mode 0600 (SQLite gives
// its -wal and -shm files the main file's mode); and everything closed, and
// a file it created removed, when opening fails.
//
// It also tells the errors callers must branch on: IsCorrupt and
// IsDiskFull.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"syscall"

	"github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// ErrDamaged marks a database file that SQLite reports as damaged: not a
// database, or failing PRAGMA quick_check.
var ErrDamaged = errors.New("database file is damaged")

// BusyTimeout is the busy_timeout every connection gets, in milliseconds.
const BusyTimeout = 5000

// Options configure Open. Zero values are the documented defaults.
type Options struct {
	// Migrations are the schema, in order: after migration i the
	// database's PRAGMA user_version is i+1. Each runs in its own
	// transaction. Append only: never edit a migration that has shipped.
	// nil: no schema.
	Migrations []string
	// QuickCheck runs PRAGMA quick_check before migrating; a database that
	// fails it is refused with ErrDamaged. false: no check.
	QuickCheck bool
	// Readers is the most connections of the read pool; 0: max(4,
	// 2*GOMAXPROCS).
	Readers int
}

// DB is an open database: one writer connection and a read-only pool.
type DB struct {
	Path string
	// W is the one writer connection; its transactions start with BEGIN
	// IMMEDIATE, so a write never fails half way on a lock upgrade.
	W *sql.DB
	// R is a pool of read-only connections (query_only), which run
	// alongside the writer in WAL mode.
	R *sql.DB
}

// Open opens the database at path, creating it (mode 0600) if needed,
// checks its settings, optionally quick-checks it and brings its schema up
// to date. Errors wrap ErrDamaged when the file is damaged.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	created, err := createPrivate(path)
	if err != nil {
		return nil, err
	}
	db := &DB{Path: path}
	fail := func(err error) (*DB, error) {
		if db.R != nil {
			db.R.Close()
		}
		if db.W != nil {
			db.W.Close()
		}
		if created {
			for _, p := range Files(path) {
				os.Remove(p)
			}
		}
		if IsCorrupt(err) && !errors.Is(err, ErrDamaged) {
			err = fmt.Errorf("%w: %w", ErrDamaged, err)
		}
		return nil, err
	}
	if db.W, err = sql.Open("sqlite3", DSN(path, "_txlock=immediate")); err != nil {
		return fail(err)
	}
	db.W.SetMaxOpenConns(1)
	db.W.SetMaxIdleConns(1)
	db.W.SetConnMaxLifetime(0)
	db.W.SetConnMaxIdleTime(0)
	if err := checkPragmas(ctx, db.W); err != nil {
		return fail(err)
	}
	if opts.QuickCheck {
		if err := QuickCheck(ctx, db.W); err != nil {
			return fail(err)
		}
	}
	if err := migrate(ctx, db.W, opts.Migrations); err != nil {
		return fail(err)
	}
	if db.R, err = sql.Open("sqlite3", DSN(path, "_query_only=true")); err != nil {
		return fail(err)
	}
	n := opts.Readers
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	db.R.SetMaxOpenConns(n)
	db.R.SetMaxIdleConns(n)
	if err := db.R.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("open reader: %w", err))
	}
	// The -wal and -shm files now exist; SQLite made them with the main
	// file's mode, but one left from before may be wider.
	if err := restrict(path); err != nil {
		return fail(err)
	}
	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error { return errors.Join(db.R.Close(), db.W.Close()) }

// Files are the main file of the database at path and its WAL and
// shared-memory files, which belong with it.
func Files(path string) []string { return []string{path, path + "-wal", path + "-shm"} }

// createPrivate creates the database file with mode 0600 when it does not
// exist (reporting that it did), and narrows an existing one and its -wal
// and -shm files to 0600.
func createPrivate(path string) (created bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return true, f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("create database file: %w", err)
	}
	return false, restrict(path)
}

// restrict sets the database's files that exist to mode 0600. On Windows
// it does nothing: files have no permission bits there (the per-user ACL of
// %AppData% keeps them private), os.Chmod only sets or clears the read-only
// attribute, and Perm() is always 0666, so it would call SetFileAttributes
// at every open, which wine refuses ("Sharing violation") for the -shm file
// SQLite has mapped.
func restrict(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	for _, p := range Files(path) {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("restrict database file: %w", err)
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm() != 0o600 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("restrict database file: %w", err)
			}
		}
	}
	return nil
}

// DSN builds a go-sqlite3 DSN for path. The pragmas are DSN parameters so
// that every pooled connection gets them; extra ("name=value&...") adds
// more.
func DSN(path string, extra string) string {
	// In a file: URI, '?' starts the parameters, '#' a fragment and '%' an
	// escape; escape them in the path.
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	d := fmt.Sprintf("file:%s?_journal=WAL&_sync=FULL&_busy_timeout=%d&_fk=true", p, BusyTimeout)
	if extra != "" {
		d += "&" + extra
	}
	return d
}

// checkPragmas verifies that the connection settings took effect: a 2xx
// to a client must mean the row is on disk.
func checkPragmas(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	for _, p := range []struct {
		name string
		want int
	}{{"synchronous", 2}, {"foreign_keys", 1}, {"busy_timeout", BusyTimeout}} {
		var got int
		if err := db.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(&got); err != nil {
			return fmt.Errorf("read %s: %w", p.name, err)
		}
		if got != p.want {
			return fmt.Errorf("%s is %d, want %d", p.name, got, p.want)
		}
	}
	return nil
}

// QuickCheck runs PRAGMA quick_check on db; unless SQLite answers "ok" it
// returns an error wrapping ErrDamaged with SQLite's first findings.
func QuickCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check(3)")
	if err != nil {
		return fmt.Errorf("quick check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("quick check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("quick check: %w", err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	detail := strings.Join(msgs, "; ")
	if len(detail) > 200 {
		detail = detail[:200] + "…"
	}
	return fmt.Errorf("%w (quick check: %s)", ErrDamaged, detail)
}

// migrate brings the schema up to date.
func migrate(ctx context.Context, db *sql.DB, migrations []string) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d): was it written by a newer synctray?", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if err := applyMigration(ctx, db, i, migrations[i]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, i int, m string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m); err != nil {
		return err
	}
	// PRAGMA takes no bound parameters; i is an int.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
		return err
	}
	return tx.Commit()
}

// IsCorrupt reports whether err says a database is damaged: SQLITE_CORRUPT,
// SQLITE_NOTADB, or ErrDamaged from Open.
func IsCorrupt(err error) bool {
	if errors.Is(err, ErrDamaged) {
		return true
	}
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB)
}

// IsDiskFull reports whether err says the disk (or the database's size
// limit) is full: SQLITE_FULL, or ENOSPC from a plain file write.
func IsDiskFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}
