package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"synctray/internal/private"
	"synctray/localserver"
	"synctray/localserver/datadir"
	"synctray/upstream"
	"synctray/upstream/pgstore"
)

func runUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upstream", "synctray upstream [flags] [migrate]\n\nRuns the reference upstream server (protocol v1): it applies each idempotency key once\nand publishes every applied action as an event. Fault injection flags are for demos and tests.\n\n"+
		"The store is SQLite in --data-dir, or with --db a PostgreSQL database that any number of\n"+
		"upstream instances share (each key applied once among them, every instance streams every event).\n"+
		"'migrate' brings the store's schema up to date and exits (start-up does it too).", stderr)
	var c common
	c.registerIn(fs, "127.0.0.1:7718", defaultUpstreamDir(),
		"the upstream's own directory (upstream.db, the applied actions), locked while it runs; "+
			"by default not the one of the tray's or serve's built-in upstream (<data-dir>/upstream); unused with --db")
	dsn := fs.String("db", "", "PostgreSQL database for the store: postgres://user@host/dbname?sslmode=… or a key=value DSN "+
		"(a password here is visible in ps: prefer --db-file or SYNCTRAY_DB); default: SQLite in --data-dir")
	dsnFile := fs.String("db-file", "", "read the --db DSN from this file (mode 0600: refused if other users can read it)")
	dbPool := fs.Int("db-pool", defaultDBPool, "most PostgreSQL connections of this instance, besides one for LISTEN (with --db)")
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
	shutdown := fs.Duration("shutdown-timeout", defaultShutdownTimeout, "on SIGTERM or ^C, how long requests in flight may take to finish before their connections are cut")
	pos, given, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	migrateOnly := len(pos) > 0 && pos[0] == "migrate"
	if migrateOnly {
		pos = pos[1:]
	}
	if len(pos) > 0 {
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
	db, err := resolveDB(log, *dsn, *dsnFile, *dbPool, given)
	if err != nil {
		return err
	}
	if migrateOnly {
		return migrateUpstream(ctx, c.dataDir, db, stdout)
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
	if db.dsn != "" {
		log.Info("the store is in PostgreSQL", "db", pgstore.Redact(db.dsn), "pool", db.pool)
	}
	if *shutdown <= 0 {
		return fmt.Errorf("--shutdown-timeout %v: want more than 0", *shutdown)
	}
	url, run, err := startUpstream(c.dataDir, c.addr, db, opts, *shutdown)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "synctray upstream is running at %s\n", url)
	return run(ctx)
}

// defaultDBPool is --db-pool's default.
const defaultDBPool = 10

// defaultShutdownTimeout is --shutdown-timeout's default.
const defaultShutdownTimeout = 20 * time.Second

// upstreamDB says where the upstream keeps its store: SQLite in its data
// dir (the zero value) or the PostgreSQL database dsn, with a pool of
// pool connections.
type upstreamDB struct {
	dsn  string
	pool int
}

// resolveDB checks --db, --db-file and --db-pool. A DSN with a password
// typed on the command line draws a warning, as a token does; a DSN file
// that other users can read is refused.
func resolveDB(log *slog.Logger, dsn, file string, pool int, given map[string]bool) (upstreamDB, error) {
	if dsn != "" && file != "" {
		return upstreamDB{}, errors.New("--db and --db-file are both set: use one")
	}
	if file != "" {
		how, fix, err := private.Exposed(file)
		if err != nil {
			return upstreamDB{}, fmt.Errorf("database DSN file: %w", err)
		}
		if how != "" {
			return upstreamDB{}, fmt.Errorf("database DSN file %s is readable by other users (%s): %s", file, how, fix)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return upstreamDB{}, fmt.Errorf("database DSN file: %w", err)
		}
		if dsn = strings.TrimSpace(string(b)); dsn == "" {
			return upstreamDB{}, fmt.Errorf("database DSN file %s is empty", file)
		}
	}
	if dsn == "" {
		if pool != defaultDBPool {
			return upstreamDB{}, errors.New("--db-pool needs --db (the SQLite store has no pool)")
		}
		return upstreamDB{}, nil
	}
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") && !strings.Contains(dsn, "=") {
		return upstreamDB{}, fmt.Errorf("--db %q: want a postgres:// URL or a key=value DSN (without --db the store is SQLite in --data-dir)", pgstore.Redact(dsn))
	}
	if _, err := pgstore.ParseDSN(dsn); err != nil {
		return upstreamDB{}, fmt.Errorf("--db: %w", err)
	}
	if pool < 1 || pool > 1000 {
		return upstreamDB{}, fmt.Errorf("--db-pool %d: want 1 to 1000", pool)
	}
	if given["db"] && pgstore.Redact(dsn) != dsn {
		log.Warn("a database password given on the command line is visible to every user of this machine (ps): use --db-file or SYNCTRAY_DB instead", "flag", "--db")
	}
	return upstreamDB{dsn: dsn, pool: pool}, nil
}

// migrateUpstream brings the schema of the store up to date and says so.
func migrateUpstream(ctx context.Context, dir string, db upstreamDB, stdout io.Writer) error {
	if db.dsn == "" {
		if err := datadir.Prepare(dir); err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		lock, err := datadir.Acquire(dir)
		if err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		defer lock.Release()
		path := filepath.Join(dir, "upstream.db")
		store, err := upstream.OpenStore(path) // migrates
		if err != nil {
			return err
		}
		if err := store.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the store %s is up to date\n", path)
		return nil
	}
	from, to, err := pgstore.Migrate(ctx, db.dsn, pgstore.Options{PoolSize: 1})
	if err != nil {
		return err
	}
	where := pgstore.Redact(db.dsn)
	if from == to {
		fmt.Fprintf(stdout, "the database %s is up to date (schema version %d)\n", where, to)
	} else {
		fmt.Fprintf(stdout, "migrated the database %s from schema version %d to %d\n", where, from, to)
	}
	return nil
}

// startUpstream opens the upstream store and listens on addr; run serves
// until ctx is cancelled, then shuts down gracefully: it stops accepting
// connections, ends the WebSocket streams (their clients reconnect, to
// another instance behind a load balancer), lets the requests in flight
// finish for up to grace (a batch being applied gets its answer), cuts
// the connections of those still running (their batches roll back: the
// hosts send them again), and closes the store. A SQLite store is
// upstream.db in dir, which is locked while it runs: the lock keeps a
// standalone upstream and a host's built-in one (or two standalone ones)
// from sharing a store. A PostgreSQL store (db.dsn) leaves dir alone: any
// number of instances share the database.
func startUpstream(dir, addr string, db upstreamDB, opts upstream.Options, grace time.Duration) (url string, run func(context.Context) error, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var lock *datadir.Lock // nil with PostgreSQL; Release takes nil
	var store upstream.Store
	if db.dsn == "" {
		if err := datadir.Prepare(dir); err != nil {
			return "", nil, fmt.Errorf("upstream: %w", err)
		}
		if lock, err = datadir.Acquire(dir); err != nil {
			return "", nil, fmt.Errorf("upstream: %w", err)
		}
		if store, err = upstream.OpenStore(filepath.Join(dir, "upstream.db")); err != nil {
			lock.Release()
			return "", nil, err
		}
	} else {
		store, err = pgstore.Open(context.Background(), db.dsn, pgstore.Options{PoolSize: db.pool, Logger: opts.Logger})
		if err != nil {
			return "", nil, err
		}
	}
	ln, err := localserver.Listen(addr)
	if err != nil {
		store.Close()
		lock.Release()
		return "", nil, err
	}
	if lock != nil {
		if err := lock.Record("http://" + ln.Addr().String()); err != nil {
			ln.Close()
			store.Close()
			lock.Release()
			return "", nil, fmt.Errorf("upstream: %w", err)
		}
	}
	srv := upstream.NewServer(store, opts)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	run = func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- hs.Serve(ln) }()
		var err error
		select {
		case <-ctx.Done():
			opts.Logger.Info("shutting down: finishing the requests in flight", "within", grace)
		case err = <-errc:
		}
		srv.Close()
		shutCtx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if e := hs.Shutdown(shutCtx); e != nil {
			opts.Logger.Warn("requests still in flight after the shutdown timeout: cutting their connections", "timeout", grace)
			hs.Close()
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return errors.Join(err, store.Close(), lock.Release())
	}
	return "http://" + ln.Addr().String(), run, nil
}
