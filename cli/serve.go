package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"synctray/localserver"
	"synctray/localserver/syncer"
	"synctray/upstream"
)

// hostFlags are the flags of the commands that run a host: serve and the
// tray app.
type hostFlags struct {
	common
	upstream      string
	upstreamToken string
	workOffline   bool
	resetOutbox   bool
	batch         int
	retention     time.Duration
}

func (h *hostFlags) register(fs *flag.FlagSet) {
	h.common.register(fs, localserver.DefaultAddr)
	fs.StringVar(&h.upstream, "upstream", "", "upstream URL (default: a built-in reference upstream on loopback)")
	fs.StringVar(&h.upstreamToken, "upstream-token", "", "bearer token for the upstream")
	fs.BoolVar(&h.workOffline, "work-offline", false, "start with automatic sync paused")
	fs.BoolVar(&h.resetOutbox, "reset-outbox", false, "if the outbox is missing, empty or damaged, move what is left aside (outbox.db.bak-TIME) and start with an empty one; a healthy outbox is kept")
	fs.IntVar(&h.batch, "batch-size", 250, "actions per upstream request")
	fs.DurationVar(&h.retention, "retention", 7*24*time.Hour, "how long synced and cancelled actions are kept")
}

// openHost opens the host, first starting the built-in upstream on
// loopback when no --upstream was given. stopUpstream stops that upstream
// (call it once the host's Run has returned) and returns its error.
func (h *hostFlags) openHost(ctx context.Context, log *slog.Logger, onShow func() bool) (host *localserver.Host, stopUpstream func() error, err error) {
	upURL := h.upstream
	upCtx, cancel := context.WithCancel(ctx)
	builtin := make(chan error, 1)
	if upURL == "" {
		url, run, err := startUpstream(filepath.Join(h.dataDir, "upstream"), "127.0.0.1:0", upstream.Options{Logger: log.With("component", "upstream")})
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("start built-in upstream: %w", err)
		}
		upURL = url
		go func() { builtin <- run(upCtx) }()
	} else {
		close(builtin)
	}
	stopUpstream = func() error {
		cancel()
		return <-builtin
	}
	host, err = localserver.Open(localserver.Config{
		DataDir: h.dataDir, Addr: h.addr, UpstreamURL: upURL, UpstreamToken: h.upstreamToken,
		WorkOffline: h.workOffline, ResetOutbox: h.resetOutbox, Retention: h.retention,
		Sync:   syncer.Options{BatchSize: h.batch},
		Logger: log,
		OnShow: onShow,
	})
	if err != nil {
		stopUpstream()
		return nil, nil, err
	}
	return host, stopUpstream, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "synctray serve [flags]\n\nRuns the local host: the PWA, the JSON API and the sync engine, on loopback.\nWith no --upstream it also runs the reference upstream on loopback.", stderr)
	var hf hostFlags
	hf.register(fs)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	log, err := hf.logger(stderr)
	if err != nil {
		return err
	}
	host, stopUpstream, err := hf.openHost(ctx, log, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "synctray is running at %s\nOpen it (one-time link): %s\n", host.URL(), host.LoginURL())
	err = host.Run(ctx)
	if uerr := stopUpstream(); uerr != nil && err == nil {
		err = uerr
	}
	return err
}
