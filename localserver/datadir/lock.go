package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the name of the lock file in a data dir. It is never
// removed or replaced (a lock on a replaced file would lock nothing); its
// content names the process that holds it.
const LockFile = "lock"

// errBusy is what the platform's lock call returns when another open file
// holds the lock.
var errBusy = errors.New("locked")

// Lock is a data dir held by this process: an exclusive, non-blocking lock
// on <dir>/lock (flock on Unix, LockFileEx on Windows), which the kernel
// drops when the process ends, however it ends.
type Lock struct {
	f   *os.File
	pid int
}

// InUseError says that another process holds the data dir.
type InUseError struct {
	Dir string
	PID int    // 0: not recorded yet
	URL string // "": not recorded yet
}

func (e *InUseError) Error() string {
	var who []string
	if e.PID > 0 {
		who = append(who, "pid "+strconv.Itoa(e.PID))
	}
	if e.URL != "" {
		who = append(who, e.URL)
	}
	s := "data dir " + e.Dir + " is in use by synctray"
	if len(who) > 0 {
		s += " (" + strings.Join(who, ", ") + ")"
	}
	return s + ": stop it first, or pick another --data-dir"
}

// Acquire locks dir for this process and records its PID, or returns an
// *InUseError naming the process that holds it. Release it with Release.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errBusy) {
			e := &InUseError{Dir: dir}
			e.PID, e.URL = readHolder(path)
			return nil, e
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	l := &Lock{f: f, pid: os.Getpid()}
	if err := l.Record(""); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// Record writes this process's PID and, when known, the host's URL into
// the lock file, for the message a second start shows.
func (l *Lock) Record(url string) error {
	s := "pid=" + strconv.Itoa(l.pid) + "\n"
	if url != "" {
		s += "url=" + url + "\n"
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("record lock holder: %w", err)
	}
	if _, err := l.f.WriteAt([]byte(s), 0); err != nil {
		return fmt.Errorf("record lock holder: %w", err)
	}
	return nil
}

// Release empties the lock file and unlocks it. It is safe to call twice.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close() // closing the last descriptor drops the lock
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock data dir: %w", err)
	}
	return nil
}

func readHolder(path string) (pid int, url string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, ""
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "pid":
			pid, _ = strconv.Atoi(v)
		case "url":
			url = v
		}
	}
	return pid, url
}
