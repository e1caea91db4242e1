package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"synctray/internal/failure"
	"synctray/localserver"
)

// quitWait bounds how long `synctray quit` waits for the host to stop.
const quitWait = 30 * time.Second

// runQuit stops the running host (the tray app or serve) the way a signal
// would: it finishes what is in flight and closes the outbox. It is how a
// Windows GUI build, which no Ctrl+C reaches, is stopped from a script.
func runQuit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("quit", "synctray quit [flags]\n\nStops the running synctray (tray app or serve) cleanly and waits until it has stopped.", stderr)
	var c common
	c.register(fs, localserver.DefaultAddr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	hc, err := newHostClient(c)
	if err != nil {
		return err
	}
	if err := hc.do(ctx, "POST", "/api/quit", nil, nil); err != nil {
		if failure.IsConnRefused(err) {
			return &codedError{"not_running", fmt.Errorf("no synctray answers at %s", c.addr)}
		}
		return fmt.Errorf("quit: %w", err)
	}
	// Stopped when the port no longer takes connections.
	deadline := time.Now().Add(quitWait)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", c.addr, time.Second)
		if err != nil {
			_, err = fmt.Fprintf(stdout, "synctray at %s stopped\n", c.addr)
			return err
		}
		conn.Close()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("synctray at %s was asked to stop but still answers after %v", c.addr, quitWait)
}
