package cli

import (
	"bytes"
	"os"
	"testing"
)

func TestAStartupErrorGoesToAWindowOnlyWhenStderrIsNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe (a desktop launcher's stderr) counts as a terminal: the window would not show")
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer counts as a terminal")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !isTerminal(tty) {
			t.Error("/dev/tty does not count as a terminal: a shell user would get a window besides the message")
		}
	}
}
