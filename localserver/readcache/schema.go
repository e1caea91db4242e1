package readcache

// migrations are applied in order by sqlitedb.Open, each in its own
// transaction; after migration i the database's PRAGMA user_version is
// i+1. Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: stored answers.
	`
CREATE TABLE entries (
	id        INTEGER PRIMARY KEY,
	url       TEXT    NOT NULL, -- the full upstream URL, query included
	variant   BLOB    NOT NULL, -- SHA-256 of the values of the request headers named by vary
	vary      TEXT    NOT NULL, -- the answer's Vary names, canonical, sorted, comma separated
	header    TEXT    NOT NULL, -- the stored answer headers, JSON {"Name":["value",...]}
	body      BLOB    NOT NULL,
	size      INTEGER NOT NULL, -- what the entry counts against MaxBytes
	stored_at TEXT    NOT NULL, -- fixed-width UTC, when the upstream gave it
	used      INTEGER NOT NULL, -- last use, a counter: LRU order
	UNIQUE (url, variant)
) STRICT;

-- Eviction: least recently used first.
CREATE INDEX entries_used ON entries (used);
`,
}
