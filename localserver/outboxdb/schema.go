package outboxdb

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order, each in its own transaction; after
// migration i the database's PRAGMA user_version is i+1. Append only: never
// edit a migration that has shipped.
var migrations = []string{
	// 1: actions and their history.
	`
CREATE TABLE actions (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	key             TEXT    NOT NULL UNIQUE,
	type            TEXT    NOT NULL,
	payload         TEXT    NOT NULL,
	state           TEXT    NOT NULL CHECK (state IN ('queued', 'syncing', 'synced', 'failed', 'cancelled')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	next_attempt_at TEXT,
	created_at      TEXT    NOT NULL,
	updated_at      TEXT    NOT NULL,
	synced_at       TEXT
) STRICT;

-- Claim (state = 'queued' ORDER BY id), list by state newest first
-- (state = ? AND id < ? ORDER BY id DESC), counts, max queued id, prune.
CREATE INDEX actions_state_id ON actions (state, id);

CREATE TABLE history (
	id         INTEGER PRIMARY KEY,
	action_id  INTEGER NOT NULL REFERENCES actions (id) ON DELETE CASCADE,
	at         TEXT    NOT NULL,
	from_state TEXT    NOT NULL,
	to_state   TEXT    NOT NULL,
	detail     TEXT    NOT NULL DEFAULT ''
) STRICT;

-- Get (history of one action in order) and the ON DELETE CASCADE lookup.
CREATE INDEX history_action_id ON history (action_id, id);
`,
}

// migrate brings the schema up to date.
func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d): was the outbox written by a newer synctray?", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if err := applyMigration(ctx, db, i); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, i int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
		return err
	}
	// PRAGMA takes no bound parameters; i is an int.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
		return err
	}
	return tx.Commit()
}
