package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"synctray/upstream"
)

// Migrations are the schema, in order: after migration i the database's
// synctray_schema.version is i+1. Each runs in its own transaction.
// Append only: never edit a migration that has shipped.
//
// Migration 1: synctray_keys remembers every key ever seen with its final
// verdict; synctray_events holds the applied actions numbered by cursor
// in commit order (1, 2, 3, … without gaps); synctray_counters is one row
// holding Stats and the highest cursor, which Apply updates last in its
// transaction: its row lock, held until commit, is what makes cursors
// follow commit order.
var Migrations = []string{`
CREATE TABLE synctray_keys (
	key        text PRIMARY KEY,
	status     text NOT NULL CHECK (status IN ('applied', 'rejected')),
	error      text NOT NULL DEFAULT '',
	first_seen timestamptz NOT NULL
);
CREATE TABLE synctray_events (
	cursor     bigint PRIMARY KEY CHECK (cursor > 0),
	key        text NOT NULL UNIQUE REFERENCES synctray_keys (key),
	type       text NOT NULL,
	payload    text NOT NULL,
	created_at timestamptz NOT NULL,
	applied_at timestamptz NOT NULL
);
CREATE TABLE synctray_counters (
	id          int PRIMARY KEY CHECK (id = 1),
	last_cursor bigint NOT NULL,
	applied     bigint NOT NULL,
	duplicates  bigint NOT NULL,
	rejected    bigint NOT NULL
);
INSERT INTO synctray_counters (id, last_cursor, applied, duplicates, rejected) VALUES (1, 0, 0, 0, 0);
`}

// schemaLock is the transaction-level advisory lock that migrations hold,
// so that instances starting together migrate one after the other.
const schemaLock = 0x73796e6374726179 // "synctray"

// migrate brings the schema up to date, one migration per transaction,
// and returns the versions before and after. A database of a newer schema
// is refused with upstream.ErrNewerSchema.
func migrate(ctx context.Context, pool *pgxpool.Pool, migrations []string) (from, to int, err error) {
	for i := 0; ; i++ {
		found, done, err := migrateOne(ctx, pool, migrations)
		if i == 0 {
			from = found
		}
		if err != nil || done {
			return from, found, err
		}
	}
}

// migrateOne runs the next migration, if any, and returns the version it
// found; done says there was none to run.
func migrateOne(ctx context.Context, pool *pgxpool.Pool, migrations []string) (version int, done bool, err error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLock)); err != nil {
		return 0, false, fmt.Errorf("migrate: lock: %w", err)
	}
	// Under the lock: the statements below run one instance at a time.
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS synctray_schema (
		id      int PRIMARY KEY CHECK (id = 1),
		version int NOT NULL
	)`); err != nil {
		return 0, false, fmt.Errorf("migrate: create synctray_schema: %w", err)
	}
	err = tx.QueryRow(ctx, `SELECT version FROM synctray_schema WHERE id = 1`).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		version, err = 0, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("migrate: read schema version: %w", err)
	}
	switch {
	case version > len(migrations):
		return version, false, fmt.Errorf("%w (version %d, this program knows %d): was it written by a newer synctray?",
			upstream.ErrNewerSchema, version, len(migrations))
	case version == len(migrations):
		return version, true, nil
	}
	if _, err := tx.Exec(ctx, migrations[version]); err != nil {
		return version, false, fmt.Errorf("migrate schema to version %d: %w", version+1, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO synctray_schema (id, version) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version`, version+1); err != nil {
		return version, false, fmt.Errorf("migrate schema to version %d: %w", version+1, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return version, false, fmt.Errorf("migrate schema to version %d: commit: %w", version+1, err)
	}
	return version, false, nil
}
