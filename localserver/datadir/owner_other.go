//go:build !unix

package datadir

import "os"

// checkOwner does nothing here: on Windows a directory's access is set by
// its ACL, which a per-user config dir already limits to its user.
func checkOwner(dir string, fi os.FileInfo) error { return nil }
