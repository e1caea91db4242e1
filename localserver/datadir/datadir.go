// Package datadir owns the host's data dir on disk: making it private
// (0700, files 0600, owned by this user; on Windows an ACL for this user,
// see internal/private), the lock that keeps it to one
// process, and atomic writes of the small state files kept in it.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"synctray/internal/private"
)

// Prepare creates dir (mode 0700) if needed, refuses one that belongs to
// another user, and narrows an existing one to 0700 (refusing, with the
// reason, when it cannot).
func Prepare(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	if err := checkOwner(dir, fi); err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		// No modes: a protected ACL for this user, inherited by every
		// file created in the dir (see internal/private).
		if err := private.Restrict(dir); err != nil {
			return fmt.Errorf("data dir %s cannot be made private: %w", dir, err)
		}
		return nil
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data dir %s is mode %v and cannot be made private (0700): %w", dir, fi.Mode().Perm(), err)
		}
	}
	return nil
}

// RestrictFiles sets every regular file directly in dir that other users
// could read or write to mode 0600, except those named in keep (which the
// caller checks itself), and returns the names it changed.
func RestrictFiles(dir string, keep ...string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("restrict data dir files: %w", err)
	}
	var changed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || slices.Contains(keep, e.Name()) {
			continue
		}
		if runtime.GOOS == "windows" {
			// Modes mean nothing there: set the ACL each time, quietly.
			if err := private.Restrict(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return changed, fmt.Errorf("restrict data dir files: %w", err)
			}
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return changed, fmt.Errorf("restrict data dir files: %w", err)
		}
		if fi.Mode().Perm() == 0o600 {
			continue
		}
		if err := os.Chmod(filepath.Join(dir, e.Name()), 0o600); err != nil {
			return changed, fmt.Errorf("restrict data dir files: %w", err)
		}
		changed = append(changed, e.Name())
	}
	return changed, nil
}

// WriteFileAtomic replaces the file at path with data (mode 0600): it
// writes a temporary file beside it, syncs it, renames it over path and
// syncs the directory, so a crash leaves the old content or the new, never
// a mix or an empty file.
func WriteFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", base, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", base, err)
	}
	// CreateTemp makes the file 0600 already; say so for other platforms.
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", base, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot open a directory
// for syncing; its renames are journalled by NTFS.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

// rename is os.Rename, retried for up to a second on Windows, where
// replacing a file fails while another handle has it open (a reader of
// the file, a virus scanner, the search indexer) and succeeds once it is
// closed.
func rename(from, to string) error {
	err := os.Rename(from, to)
	if runtime.GOOS != "windows" {
		return err
	}
	for wait := 10 * time.Millisecond; busy(err) && wait < time.Second; wait *= 2 {
		time.Sleep(wait)
		err = os.Rename(from, to)
	}
	return err
}

// busy reports a Windows "in use" error: ERROR_ACCESS_DENIED (5) or
// ERROR_SHARING_VIOLATION (32).
func busy(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == 5 || errno == 32)
}
