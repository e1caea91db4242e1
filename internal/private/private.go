// Package private keeps the data dir's files to the user who runs
// synctray: tokens, keys and databases that no other local user may read.
//
// On Unix that is file modes: directories 0700, files 0600. On Windows
// modes do not exist (Go reports 0666 for any writable file), so it is
// the access control list: Restrict gives a file or directory a protected
// DACL (no inherited entries) that allows only the current user and
// SYSTEM, and a directory's entries are inherited by every file created
// in it later. Exposed reads the ACL back and names any other account it
// allows.
package private

import (
	"fmt"
	"os"
	"runtime"
)

// MkdirAll creates dir and its parents as needed and restricts dir (not
// the parents) to the current user.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return Restrict(dir)
}

// Restrict makes path (a file or a directory) accessible to the current
// user only: mode 0600 or 0700 on Unix, a protected DACL on Windows.
func Restrict(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("restrict %s: %w", path, err)
	}
	if err := restrict(path, fi); err != nil {
		return fmt.Errorf("restrict %s to this user: %w", path, err)
	}
	return nil
}

// Exposed says how other users could reach path ("mode 0644", or on
// Windows the accounts its ACL allows besides this user, SYSTEM and
// Administrators), and the command that fixes it; how is "" when path is
// private. An error means path could not be checked.
func Exposed(path string) (how, fix string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("check access to %s: %w", path, err)
	}
	how, fix, err = exposed(path, fi)
	if err != nil {
		return "", "", fmt.Errorf("check access to %s: %w", path, err)
	}
	return how, fix, nil
}

// Secure checks a secret file that synctray itself created (a token, a
// key): on Unix it refuses one that other users can reach, with the fix;
// on Windows it sets the file's ACL to this user again (see the package
// doc), since a user there has no chmod, and a filesystem without ACLs
// (FAT, a network share, wine) would otherwise lock them out for good.
func Secure(path string) error {
	if runtime.GOOS == "windows" {
		return Restrict(path)
	}
	how, fix, err := Exposed(path)
	if err != nil {
		return err
	}
	if how != "" {
		return fmt.Errorf("%s is readable by other users (%s): %s", path, how, fix)
	}
	return nil
}
