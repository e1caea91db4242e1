//go:build windows

package failure

import "golang.org/x/sys/windows"

// The socket errors behind "not reachable", "closed the connection" and
// "did not answer in time": Winsock's own numbers, which syscall's E*
// values on Windows (made up, never returned) do not match.
var (
	errsUnreachable = []error{windows.WSAECONNREFUSED, windows.WSAEHOSTUNREACH, windows.WSAENETUNREACH}
	errsRefused     = []error{windows.WSAECONNREFUSED}
	errsClosed      = []error{windows.WSAECONNRESET, windows.WSAECONNABORTED, windows.ERROR_BROKEN_PIPE}
	errsTimedOut    = []error{windows.WSAETIMEDOUT}
)
