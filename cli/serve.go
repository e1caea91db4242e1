package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"synctray/localserver"
	"synctray/localserver/syncer"
	"synctray/upstream"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "synctray serve [flags]\n\nRuns the local host: the PWA, the JSON API and the sync engine, on loopback.\nWith no --upstream it also runs the reference upstream on loopback.", stderr)
	var c common
	c.register(fs, localserver.DefaultAddr)
	upURL := fs.String("upstream", "", "upstream URL (default: a built-in reference upstream on loopback)")
	upToken := fs.String("upstream-token", "", "bearer token for the upstream")
	workOffline := fs.Bool("work-offline", false, "start with automatic sync paused")
	batch := fs.Int("batch-size", 250, "actions per upstream request")
	retention := fs.Duration("retention", 7*24*time.Hour, "how long synced and cancelled actions are kept")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	builtin := make(chan error, 1)
	if *upURL == "" {
		url, run, err := startUpstream(filepath.Join(c.dataDir, "upstream"), "127.0.0.1:0", upstream.Options{Logger: log.With("component", "upstream")})
		if err != nil {
			return fmt.Errorf("start built-in upstream: %w", err)
		}
		*upURL = url
		go func() { builtin <- run(ctx) }()
	} else {
		close(builtin)
	}

	host, err := localserver.Open(localserver.Config{
		DataDir: c.dataDir, Addr: c.addr, UpstreamURL: *upURL, UpstreamToken: *upToken,
		WorkOffline: *workOffline, Retention: *retention,
		Sync:   syncer.Options{BatchSize: *batch},
		Logger: log,
	})
	if err != nil {
		cancel()
		<-builtin
		return err
	}
	fmt.Fprintf(stdout, "synctray is running at %s\nOpen it (one-time link): %s\n", host.URL(), host.LoginURL())
	err = host.Run(ctx)
	cancel()
	if uerr := <-builtin; uerr != nil && err == nil {
		err = uerr
	}
	return err
}
