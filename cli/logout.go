package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"synctray/internal/failure"

	"synctray/localserver"
)

// runLogout signs out every browser session: the running host rotates its
// session key at once; with no host running, the key file is rotated and
// the next start uses it.
func runLogout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logout", "synctray logout --all [flags]\n\nSigns out every browser session: each open page must sign in again (synctray open).", stderr)
	var c common
	c.register(fs, localserver.DefaultAddr)
	all := fs.Bool("all", false, "sign out every browser session (required: sessions are not signed out one by one)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	} else if !*all {
		return usageErr(fs, "give --all: sessions are not signed out one by one")
	}
	if hc, err := newHostClient(c); err == nil {
		err := hc.do(ctx, "POST", "/api/sessions/revoke", nil, nil)
		if err == nil {
			_, err = fmt.Fprintln(stdout, "Signed out every browser session; open synctray again with `synctray open`.")
			return err
		}
		if !failure.IsConnRefused(err) {
			return fmt.Errorf("revoke sessions: %w", err)
		}
	}
	path := filepath.Join(c.dataDir, "session-key")
	if _, err := os.Stat(path); errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("no session key in %s: has synctray run with this --data-dir?", c.dataDir)
	}
	if _, err := localserver.RotateSecret(path); err != nil {
		return fmt.Errorf("rotate session key: %w", err)
	}
	_, err := fmt.Fprintf(stdout, "No host answered at %s; rotated %s, so every browser session is signed out when synctray starts.\n"+
		"(A host running with another --addr keeps the old sessions until it restarts.)\n", c.addr, path)
	return err
}
