//go:build unix

package datadir

import (
	"fmt"
	"os"
	"syscall"
)

// checkOwner refuses a data dir that belongs to another user: its owner
// could read the outbox and the tokens whatever the mode.
func checkOwner(dir string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("data dir %s belongs to another user (uid %d, not %d): use a data dir of your own (--data-dir)", dir, st.Uid, uid)
	}
	return nil
}
