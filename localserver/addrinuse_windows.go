//go:build windows

package localserver

import (
	"errors"

	"golang.org/x/sys/windows"
)

// isAddrInUse reports whether a listen failed because the port is taken:
// Winsock answers WSAEADDRINUSE (10048), not syscall.EADDRINUSE, which on
// Windows is an invented value no call returns.
func isAddrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }
