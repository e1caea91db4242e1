package localserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"synctray/internal/sqlitedb"
	"synctray/localserver/datadir"
	"synctray/localserver/outboxdb"
)

const (
	outboxFile = "outbox.db"
	// outboxMarker is written after the outbox was first opened: from then
	// on a missing or empty outbox.db is a loss to report, not a first
	// start.
	outboxMarker = "outbox-created"
	cursorFile   = "events-cursor"
)

// openOutbox opens the outbox in cfg.DataDir. In a data dir that has held
// an outbox it refuses a missing or empty outbox.db, and it refuses a
// damaged one, each with a message naming the file and what to do; with
// cfg.ResetOutbox it moves such files aside and starts with an empty one.
func openOutbox(cfg Config, opts outboxdb.Options) (*outboxdb.DB, error) {
	path := filepath.Join(cfg.DataDir, outboxFile)
	problem := checkOutboxFile(cfg.DataDir, path)
	var db *outboxdb.DB
	if problem == nil {
		var err error
		db, err = outboxdb.Open(path, opts)
		switch {
		case errors.Is(err, sqlitedb.ErrDamaged):
			problem = fmt.Errorf("%w: restore it from a backup, or start over with --reset-outbox (moves the damaged files aside)", err)
		case err != nil:
			return nil, err
		}
	}
	if problem != nil {
		if !cfg.ResetOutbox {
			return nil, problem
		}
		moved, err := moveAside(path, cfg.Sync.Clock.Now())
		if err != nil {
			return nil, fmt.Errorf("reset outbox: %w", err)
		}
		cfg.Logger.Warn("outbox reset: starting with an empty outbox", "problem", problem.Error(), "moved_aside", moved)
		if db, err = outboxdb.Open(path, opts); err != nil {
			return nil, err
		}
	} else if cfg.ResetOutbox {
		cfg.Logger.Warn("--reset-outbox given, but the outbox is healthy: kept it", "path", path)
	}
	if err := markOutbox(cfg.DataDir, cfg.Sync.Clock.Now()); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkOutboxFile reports a missing or empty outbox in a data dir that had
// one: the marker is there, or (data dirs from before the marker) the
// events cursor, which only a host that ran saves.
func checkOutboxFile(dir, path string) error {
	if !exists(filepath.Join(dir, outboxMarker)) && !exists(filepath.Join(dir, cursorFile)) {
		return nil // a new data dir
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("outbox %s is missing, but this data dir has held one (the actions queued in it would be lost): restore the file from a backup, or start over with an empty outbox with --reset-outbox", path)
	case err != nil:
		return fmt.Errorf("outbox: %w", err)
	case fi.Size() == 0:
		return fmt.Errorf("outbox %s is empty (0 bytes), but this data dir has held an outbox: restore the file from a backup, or start over with --reset-outbox (moves what is left aside)", path)
	}
	return nil
}

// moveAside renames the outbox's files that exist to
// outbox.db.bak-TIME(-wal, -shm), which SQLite opens as one database, and
// returns the new names.
func moveAside(path string, now time.Time) ([]string, error) {
	bak := path + ".bak-" + now.UTC().Format("20060102T150405Z")
	for i := 2; exists(bak); i++ {
		bak = path + ".bak-" + now.UTC().Format("20060102T150405Z") + "." + strconv.Itoa(i)
	}
	var moved []string
	for i, f := range sqlitedb.Files(path) {
		to := sqlitedb.Files(bak)[i]
		if err := os.Rename(f, to); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return moved, err
		}
		moved = append(moved, filepath.Base(to))
	}
	return moved, nil
}

// markOutbox writes the marker once.
func markOutbox(dir string, now time.Time) error {
	p := filepath.Join(dir, outboxMarker)
	if exists(p) {
		return nil
	}
	if err := datadir.WriteFileAtomic(p, []byte("outbox created "+now.UTC().Format(time.RFC3339)+"\n")); err != nil {
		return fmt.Errorf("mark outbox: %w", err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
