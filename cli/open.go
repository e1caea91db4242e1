package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"synctray/localserver"
)

func runOpen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("open", "synctray open [--print] [flags]\n\nOpens the running host in the default browser through a one-time login link.\nWhen the browser cannot be started, it prints the link to open yourself (exit 0).", stderr)
	var c common
	c.register(fs, localserver.DefaultAddr)
	printOnly := fs.Bool("print", false, "print the link instead of opening it")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	hc, err := newHostClient(c)
	if err != nil {
		return err
	}
	var r struct {
		URL string `json:"url"`
	}
	if err := hc.do(ctx, "POST", "/api/login-links", nil, &r); err != nil {
		return err
	}
	if *printOnly {
		_, err := fmt.Fprintln(stdout, r.URL)
		return err
	}
	return openOrPrint(r.URL, stdout, stderr)
}

// openOrPrint opens url in the browser or, when that fails, says why on
// stderr and prints the link on stdout for the user to open. Either way
// the user has the link, so it is not an error.
func openOrPrint(url string, stdout, stderr io.Writer) error {
	err := OpenBrowser(url)
	if err == nil {
		return nil
	}
	fmt.Fprintf(stderr, "synctray: could not open the browser: %v\n", err)
	_, err = fmt.Fprintf(stdout, "open this link in your browser: %s\n", url)
	return err
}

// openerWait is how long OpenBrowser waits for the opener to exit. Some
// (xdg-open without a desktop environment) run the browser in the
// foreground: one still running then has started it.
var openerWait = 10 * time.Second

// OpenBrowser opens url in the desktop's default browser with the
// desktop's opener (xdg-open, open, or rundll32 on Windows) and waits for
// the opener to exit, for at most 10 s. It returns an error when the
// opener is missing or exits with a failure, with what it printed.
func OpenBrowser(url string) error {
	name, args := "xdg-open", []string{url}
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", url}
	}
	cmd := exec.Command(name, args...)
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A browser started by the opener inherits its output: do not wait
	// for the browser to close it once the opener has exited.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%s is not installed (it opens links in the desktop's browser)", name)
		}
		return fmt.Errorf("run %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(openerWait):
		return nil // still running, as a browser in the foreground does
	}
	var ee *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		return nil
	case errors.As(err, &ee):
		msg := fmt.Sprintf("%s exited with status %d", name, ee.ExitCode())
		if s := out.String(); s != "" {
			msg += ": " + s
		}
		return errors.New(msg)
	default:
		return fmt.Errorf("run %s: %w", name, err)
	}
}

// tailBuffer keeps the last 512 bytes written to it, safe for concurrent
// use.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 512 {
		t.b = t.b[len(t.b)-512:]
	}
	return len(p), nil
}

// String is the text kept, on one line.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(string(t.b)), " ")
}
