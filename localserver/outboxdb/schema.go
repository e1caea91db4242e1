package outboxdb

// migrations are applied in order by sqlitedb.Open, each in its own transaction; after
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
	// 2: a scratch table for CheckWritable (empty between checks).
	`CREATE TABLE probe (id INTEGER PRIMARY KEY, b BLOB NOT NULL) STRICT;`,
	// 3: the upstream's last answer to an action (HTTP mode), as JSON.
	`ALTER TABLE actions ADD COLUMN response TEXT NOT NULL DEFAULT '';`,
}
