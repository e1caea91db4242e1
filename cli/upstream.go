package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"synctray/localserver"
	"synctray/localserver/datadir"
	"synctray/upstream"
)

func runUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upstream", "synctray upstream [flags]\n\nRuns the reference upstream server (protocol v1): it applies each idempotency key once\nand publishes every applied action as an event. Fault injection flags are for demos and tests.", stderr)
	var c common
	c.registerIn(fs, "127.0.0.1:7718", defaultUpstreamDir(),
		"the upstream's own directory (upstream.db, the applied actions), locked while it runs; "+
			"by default not the one of the tray's or serve's built-in upstream (<data-dir>/upstream)")
	token := fs.String("token", "", "require this bearer token (visible in ps: prefer --token-file or SYNCTRAY_TOKEN)")
	tokenFile := fs.String("token-file", "", "require the bearer token kept in this file")
	noAuth := fs.Bool("insecure-no-auth", false, "serve without a token: every program and user of this machine can read and write")
	allowedHosts := fs.String("allowed-hosts", "", "comma-separated Host names accepted besides its own address (name or name:port), e.g. behind a reverse proxy")
	skipHostCheck := fs.Bool("insecure-skip-host-check", false, "accept any Host header (no protection against DNS rebinding)")
	var f upstream.Faults
	fs.Float64Var(&f.FailRate, "fail-rate", 0, "fraction of POST /v1/actions answered 503 without applying")
	fs.Float64Var(&f.DropRate, "drop-rate", 0, "fraction of batches applied, then the connection dropped without an answer")
	fs.Float64Var(&f.ThrottleRate, "throttle-rate", 0, "fraction of batches answered 429 with Retry-After")
	fs.DurationVar(&f.RetryAfter, "retry-after", time.Second, "Retry-After sent with 429")
	fs.DurationVar(&f.Latency, "latency", 0, "added latency per batch")
	pos, given, err := parseArgs(fs, args)
	if err != nil {
		return err
	} else if len(pos) > 0 {
		return usageErr(fs, "unexpected argument %q", pos[0])
	}
	for _, r := range []float64{f.FailRate, f.DropRate, f.ThrottleRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("rates must be between 0 and 1, got %v", r)
		}
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	tok, err := resolveToken(log, "token", *token, *tokenFile, given)
	if err != nil {
		return err
	}
	switch {
	case tok == "" && !*noAuth:
		return errors.New("the upstream needs a token: give --token-file FILE (or SYNCTRAY_TOKEN), or serve without one with --insecure-no-auth")
	case tok != "" && *noAuth:
		return errors.New("--insecure-no-auth and a token are both set: use one")
	case *noAuth:
		log.Warn("serving without a token (--insecure-no-auth): every program and user of this machine can read and write this upstream")
	}
	opts := upstream.Options{Token: tok, Faults: f, Logger: log, InsecureSkipHostCheck: *skipHostCheck}
	for _, h := range strings.Split(*allowedHosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("--allowed-hosts: %q is not a host name or name:port", h)
		}
		opts.AllowedHosts = append(opts.AllowedHosts, h)
	}
	url, run, err := startUpstream(c.dataDir, c.addr, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "synctray upstream is running at %s\n", url)
	return run(ctx)
}

// startUpstream locks dir, opens the upstream store in it and listens on
// addr; run serves until ctx is cancelled, closes the store and unlocks
// dir. The lock keeps a standalone upstream and a host's built-in one
// (or two standalone ones) from sharing a store.
func startUpstream(dir, addr string, opts upstream.Options) (url string, run func(context.Context) error, err error) {
	if err := datadir.Prepare(dir); err != nil {
		return "", nil, fmt.Errorf("upstream: %w", err)
	}
	lock, err := datadir.Acquire(dir)
	if err != nil {
		return "", nil, fmt.Errorf("upstream: %w", err)
	}
	store, err := upstream.OpenStore(filepath.Join(dir, "upstream.db"))
	if err != nil {
		lock.Release()
		return "", nil, err
	}
	ln, err := localserver.Listen(addr)
	if err != nil {
		store.Close()
		lock.Release()
		return "", nil, err
	}
	if err := lock.Record("http://" + ln.Addr().String()); err != nil {
		ln.Close()
		store.Close()
		lock.Release()
		return "", nil, fmt.Errorf("upstream: %w", err)
	}
	srv := upstream.NewServer(store, opts)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	run = func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- hs.Serve(ln) }()
		var err error
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
		srv.Close()
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := hs.Shutdown(shutCtx); e != nil && err == nil {
			err = e
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return errors.Join(err, store.Close(), lock.Release())
	}
	return "http://" + ln.Addr().String(), run, nil
}
