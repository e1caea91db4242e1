//go:build !windows

package failure

import "syscall"

// The socket errors behind "not reachable", "closed the connection" and
// "did not answer in time".
var (
	errsUnreachable = []error{syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH}
	errsRefused     = []error{syscall.ECONNREFUSED}
	errsClosed      = []error{syscall.ECONNRESET, syscall.EPIPE}
	errsTimedOut    = []error{syscall.ETIMEDOUT}
)
