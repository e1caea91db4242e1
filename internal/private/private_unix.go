//go:build !windows

package private

import (
	"fmt"
	"os"
)

func restrict(path string, fi os.FileInfo) error {
	mode := os.FileMode(0o600)
	if fi.IsDir() {
		mode = 0o700
	}
	if fi.Mode().Perm() == mode {
		return nil
	}
	return os.Chmod(path, mode)
}

func exposed(path string, fi os.FileInfo) (how, fix string, err error) {
	if fi.Mode().Perm()&0o077 == 0 {
		return "", "", nil
	}
	fix = "chmod 600 it"
	if fi.IsDir() {
		fix = "chmod 700 it"
	}
	return fmt.Sprintf("mode %v", fi.Mode().Perm()), fix, nil
}
