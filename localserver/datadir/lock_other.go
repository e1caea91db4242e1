//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || windows)

package datadir

import "os"

// lockFile does not lock here: this platform has no flock in
// golang.org/x/sys (Solaris, AIX, Plan 9, WASI), and synctray is not built
// for it. Two hosts on one data dir are then not prevented.
func lockFile(f *os.File) error { return nil }
