package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"synctray/internal/private"
	"synctray/localserver"
	"synctray/localserver/datadir"
	"synctray/localserver/syncer"
	"synctray/upstream"
)

// hostFlags are the flags of the commands that run a host: serve and the
// tray app.
type hostFlags struct {
	common
	app               string
	upstream          string
	upstreamToken     string
	upstreamTokenFile string
	workOffline       bool
	resetOutbox       bool
	batch             int
	retention         time.Duration
	protocol          string
	headerFile        string
	concurrency       int
	forward           []string
	given             map[string]bool // flags given on the command line (parseArgs)
}

func (h *hostFlags) register(fs *flag.FlagSet) {
	h.common.register(fs, localserver.DefaultAddr)
	fs.StringVar(&h.app, "app", "", appUsage())
	fs.StringVar(&h.upstream, "upstream", "", "upstream URL (default: a built-in reference upstream on loopback)")
	fs.StringVar(&h.upstreamToken, "upstream-token", "", "bearer token for the upstream (visible in ps: prefer --upstream-token-file or SYNCTRAY_UPSTREAM_TOKEN)")
	fs.StringVar(&h.upstreamTokenFile, "upstream-token-file", "", "file holding the bearer token for the upstream")
	fs.BoolVar(&h.workOffline, "work-offline", false, "start with automatic sync paused")
	fs.BoolVar(&h.resetOutbox, "reset-outbox", false, "if the outbox is missing, empty or damaged, move what is left aside (outbox.db.bak-TIME) and start with an empty one; a healthy outbox is kept")
	fs.IntVar(&h.batch, "batch-size", 250, fmt.Sprintf("actions per upstream request (1 to %d)", upstream.MaxBatch))
	fs.DurationVar(&h.retention, "retention", 7*24*time.Hour, "how long synced and cancelled actions are kept")
	fs.StringVar(&h.protocol, "upstream-protocol", localserver.ProtocolSynctray,
		"how to talk to the upstream: synctray (protocol v1) or http (any HTTP backend: pages write to /upstream/PATH)")
	fs.StringVar(&h.headerFile, "upstream-header-file", "", "http mode: file (mode 0600) of \"Name: value\" lines added to every upstream request, e.g. Authorization")
	fs.IntVar(&h.concurrency, "upstream-concurrency", 1, "http mode: writes in flight at once (1 keeps their order)")
	fs.Func("forward-header", "http mode: also keep and forward this request header (repeat, or comma-separated)", func(v string) error {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				h.forward = append(h.forward, n)
			}
		}
		return nil
	})
}

// httpMode checks the HTTP-mode flags and reads the header file.
func (h *hostFlags) httpMode(log *slog.Logger) (http.Header, error) {
	if h.protocol != localserver.ProtocolHTTP {
		if h.headerFile != "" || len(h.forward) > 0 || h.concurrency != 1 {
			return nil, errors.New("--upstream-header-file, --forward-header and --upstream-concurrency need --upstream-protocol http")
		}
		return nil, nil
	}
	if h.upstream == "" {
		return nil, errors.New("--upstream-protocol http needs --upstream URL (your backend)")
	}
	if h.concurrency < 1 || h.concurrency > 64 {
		return nil, fmt.Errorf("--upstream-concurrency %d: want 1 to 64", h.concurrency)
	}
	if h.headerFile == "" {
		return nil, nil
	}
	how, fix, err := private.Exposed(h.headerFile)
	if err != nil {
		return nil, fmt.Errorf("upstream header file: %w", err)
	}
	if how != "" {
		return nil, fmt.Errorf("upstream header file %s is readable by other users (%s): %s", h.headerFile, how, fix)
	}
	b, err := os.ReadFile(h.headerFile)
	if err != nil {
		return nil, fmt.Errorf("upstream header file: %w", err)
	}
	hdr, err := localserver.ParseHeaderFile(string(b))
	if err != nil {
		return nil, fmt.Errorf("upstream header file %s: %w", h.headerFile, err)
	}
	return hdr, nil
}

// openHost opens the host, first starting the built-in upstream on
// loopback when no --upstream was given. stopUpstream stops that upstream
// (call it once the host's Run has returned) and returns its error.
//
// The built-in upstream requires a token that only this host knows, kept
// in <data-dir>/upstream/token (mode 0600): other users and programs of
// the machine, and web pages, cannot read or write the messages.
func (h *hostFlags) openHost(ctx context.Context, log *slog.Logger, onShow func() bool) (host *localserver.Host, stopUpstream func() error, err error) {
	if h.batch < 1 || h.batch > upstream.MaxBatch {
		return nil, nil, fmt.Errorf("--batch-size %d: want 1 to %d (the protocol's limit per request)", h.batch, upstream.MaxBatch)
	}
	if h.app != "" {
		// Absolute, also in the tray's autostart entry (which runs elsewhere).
		if abs, err := filepath.Abs(h.app); err == nil {
			h.app = abs
		}
	}
	upToken, err := resolveToken(log, "upstream-token", h.upstreamToken, h.upstreamTokenFile, h.given)
	if err != nil {
		return nil, nil, err
	}
	upHeaders, err := h.httpMode(log)
	if err != nil {
		return nil, nil, err
	}
	upURL := h.upstream
	upCtx, cancel := context.WithCancel(ctx)
	builtin := make(chan error, 1)
	if upURL == "" {
		if upToken != "" {
			log.Warn("--upstream-token is ignored without --upstream: the built-in upstream has its own token")
		}
		// First the data dir, so that an unwritable one is named as such,
		// not as a failure of the built-in upstream that lives in it.
		if err := checkDataDir(h.dataDir); err != nil {
			cancel()
			return nil, nil, err
		}
		dir := filepath.Join(h.dataDir, "upstream")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			cancel()
			return nil, nil, fmt.Errorf("create upstream data dir: %w", err)
		}
		upToken, err = localserver.LoadOrCreateSecret(filepath.Join(dir, "token"))
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("built-in upstream token: %w", err)
		}
		url, run, err := startUpstream(dir, "127.0.0.1:0", upstreamDB{}, upstream.Options{Token: upToken, Logger: log.With("component", "upstream")}, 5*time.Second)
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
		DataDir: h.dataDir, Addr: h.addr, UpstreamURL: upURL, UpstreamToken: upToken,
		WorkOffline: h.workOffline, ResetOutbox: h.resetOutbox, Retention: h.retention,
		UpstreamProtocol: h.protocol, UpstreamHeaders: upHeaders, ForwardHeaders: h.forward,
		Sync:   syncer.Options{BatchSize: h.batch, Concurrency: h.concurrency},
		AppDir: h.app,
		Logger: log,
		OnShow: onShow,
	})
	if err != nil {
		stopUpstream()
		if errors.Is(err, iofs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			if derr := checkDataDir(h.dataDir); derr != nil {
				return nil, nil, derr // the data dir is the cause
			}
		}
		return nil, nil, err
	}
	return host, stopUpstream, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "synctray serve [flags]\n\nRuns the local host: the PWA, the JSON API and the sync engine, on loopback.\nWith no --upstream it also runs the reference upstream on loopback.", stderr)
	var hf hostFlags
	hf.register(fs)
	pos, given, err := parseArgs(fs, args)
	if err != nil {
		return err
	} else if len(pos) > 0 {
		return usageErr(fs, "unexpected argument %q", pos[0])
	}
	hf.given = given
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

// checkDataDir prepares dir (datadir.Prepare) and checks that this user
// can create files in it. A directory that cannot be created or written
// is one sentence naming it and the fix.
func checkDataDir(dir string) error {
	err := datadir.Prepare(dir)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".write-check-*"); err == nil {
			f.Close()
			return os.Remove(f.Name())
		}
	}
	var errno syscall.Errno
	if (errors.Is(err, iofs.ErrPermission) || errors.Is(err, syscall.EROFS)) && errors.As(err, &errno) {
		abs, aerr := filepath.Abs(dir)
		if aerr != nil {
			abs = dir
		}
		return fmt.Errorf("the data dir %s cannot be written (%v): make it writable for your user, or pick another with --data-dir", abs, errno)
	}
	return err
}
