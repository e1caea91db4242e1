package cli

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"

	"synctray/localserver"
)

func runOpen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("open", "synctray open [--print] [flags]\n\nOpens the running host in the default browser through a one-time login link.", stderr)
	var c common
	c.register(fs, localserver.DefaultAddr)
	printOnly := fs.Bool("print", false, "print the link instead of opening it")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		fs.Usage()
		return errUsage
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
	if err := OpenBrowser(r.URL); err != nil {
		return fmt.Errorf("open browser: %w (open this link yourself: %s)", err, r.URL)
	}
	return nil
}

// OpenBrowser opens url in the desktop's default browser.
func OpenBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	return cmd.Start()
}
