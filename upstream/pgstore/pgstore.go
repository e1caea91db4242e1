// Package pgstore is the upstream's Store in PostgreSQL (pgx/v5), for
// running several `synctray upstream` instances on one database: each key
// is applied once among them all, events are numbered in commit order
// without gaps, and every instance streams the events of all of them
// (LISTEN/NOTIFY, with polling as the fallback).
//
// Exactly once: Apply inserts the batch's keys with INSERT … ON CONFLICT
// DO NOTHING at READ COMMITTED. Of two transactions inserting the same
// key, the second waits for the first and then skips the key, and reads
// the first one's verdict: no serialization failures to retry and no
// batch aborted for another's sake. Keys are inserted in sorted order and
// the counters row is locked last, so two batches cannot deadlock.
//
// Event order: the counters row holds the highest cursor; Apply takes the
// batch's cursors with UPDATE … SET last_cursor = last_cursor + n
// RETURNING, last in its transaction, in one statement with the events'
// INSERT and the NOTIFY (a round trip less while the lock is held: what
// runs under it is serialized across instances, see
// docs/benchmarks.md). The row lock is held until commit,
// so a batch gets its cursors only after every batch with lower cursors
// has committed: cursors follow commit order and a reader going on from
// the last cursor it saw never skips an event committed late (a sequence
// would hand out numbers that commit out of order). The price is that
// batches' commits are serialized, as they are in SQLite.
//
// Live events: Apply sends NOTIFY synctray_events (payload: the new
// highest cursor) in its transaction, delivered on commit. Each Store
// LISTENs on a dedicated connection (reconnecting with backoff) and a
// follower goroutine reads the events table from its last cursor whenever
// a notification, or a local commit, says there is more; it polls every
// FallbackPoll while the listener is down and every SafetyPoll always.
package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"synctray/internal/failure"
	"synctray/upstream"
)

// Channel is the LISTEN/NOTIFY channel of new events.
const Channel = "synctray_events"

// Options configure Open. Zero values are the documented defaults.
type Options struct {
	// PoolSize is the most connections of the pool, besides the
	// listener's own; 0: pgxpool's default (max(4, CPUs)) or the DSN's
	// pool_max_conns.
	PoolSize int
	// Logger gets the listener's ups and downs; nil: slog.Default().
	Logger *slog.Logger
	// FallbackPoll is how often the events table is read while the
	// listener is down; 0: 1s.
	FallbackPoll time.Duration
	// SafetyPoll is how often it is read while the listener is up, in
	// case a notification went missing; 0: 10s.
	SafetyPoll time.Duration
	// ConnectTimeout bounds connecting and migrating in Open; 0: 15s.
	ConnectTimeout time.Duration

	// dial, when set, opens the listener's connection instead (tests).
	dial func(ctx context.Context) (*pgx.Conn, error)
}

// Store is the upstream's Store in PostgreSQL. It is safe for concurrent
// use, also by several processes on one database.
type Store struct {
	pool   *pgxpool.Pool
	listen *pgx.ConnConfig // for the listener's connection
	log    *slog.Logger
	opts   Options

	hub       upstream.Hub
	wake      chan struct{} // tells the follower to read new events
	listening atomic.Bool
	listenPID atomic.Uint32 // the listener's backend, while listening

	dial func(ctx context.Context) (*pgx.Conn, error) // the listener's connection

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ upstream.Store = (*Store)(nil)

// Open connects to the database that dsn names (a postgres:// URL or
// keyword/value DSN), brings its schema up to date and starts following
// its events. Errors never quote the DSN's password; they wrap
// upstream.ErrNewerSchema for a database a newer synctray migrated.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	_, secrets := redact(dsn)
	s, err := open(ctx, dsn, opts)
	return s, scrub(err, secrets)
}

func open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts.FallbackPoll = cmp.Or(opts.FallbackPoll, time.Second)
	opts.SafetyPoll = cmp.Or(opts.SafetyPoll, 10*time.Second)
	pool, err := newPool(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	mctx, cancel := context.WithTimeout(ctx, cmp.Or(opts.ConnectTimeout, 15*time.Second))
	defer cancel()
	if err := pool.Ping(mctx); err != nil {
		pool.Close()
		return nil, connectError(err)
	}
	if _, _, err := migrate(mctx, pool, Migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	var last int64
	if err := pool.QueryRow(mctx, `SELECT last_cursor FROM synctray_counters WHERE id = 1`).Scan(&last); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: read last cursor: %w", err)
	}
	s := &Store{
		pool:   pool,
		listen: pool.Config().ConnConfig.Copy(),
		log:    opts.Logger,
		opts:   opts,
		wake:   make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var fsync, syncCommit string
	if err := pool.QueryRow(mctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit); err == nil &&
		(fsync == "off" || syncCommit == "off") {
		s.log.Warn("the database may lose acknowledged actions in a crash: turn fsync and synchronous_commit on",
			"fsync", fsync, "synchronous_commit", syncCommit)
	}
	s.listen.RuntimeParams["application_name"] = "synctray-upstream-listener"
	s.dial = opts.dial
	if s.dial == nil {
		s.dial = func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, s.listen) }
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.listenLoop()
	go s.follow(last)
	return s, nil
}

// Migrate brings the schema of the database that dsn names up to date
// and returns its versions before and after, for operators (`synctray
// upstream migrate`). Errors are as Open's.
func Migrate(ctx context.Context, dsn string, opts Options) (from, to int, err error) {
	_, secrets := redact(dsn)
	pool, err := newPool(ctx, dsn, opts)
	if err != nil {
		return 0, 0, scrub(err, secrets)
	}
	defer pool.Close()
	mctx, cancel := context.WithTimeout(ctx, cmp.Or(opts.ConnectTimeout, 15*time.Second))
	defer cancel()
	if err := pool.Ping(mctx); err != nil {
		return 0, 0, scrub(connectError(err), secrets)
	}
	from, to, err = migrate(mctx, pool, Migrations)
	if err != nil {
		err = fmt.Errorf("postgres store: %w", err)
	}
	return from, to, scrub(err, secrets)
}

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int { return len(Migrations) }

// newPool parses dsn and opens a pool on it (connecting lazily).
func newPool(ctx context.Context, dsn string, opts Options) (*pgxpool.Pool, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if opts.PoolSize < 0 {
		return nil, fmt.Errorf("pool size %d: want 1 or more", opts.PoolSize)
	}
	if opts.PoolSize > 0 {
		cfg.MaxConns = int32(opts.PoolSize)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "synctray-upstream"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return pool, nil
}

// ParseDSN parses a postgres:// URL or keyword/value DSN into a pool
// configuration. Its errors are short and never quote the DSN's password.
func ParseDSN(dsn string) (*pgxpool.Config, error) {
	_, secrets := redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err == nil {
		return cfg, nil
	}
	// pgconn's message quotes the DSN (with the password masked, as best
	// it can): keep only what is wrong with it.
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "cannot parse `"); ok {
		if i := strings.Index(rest, "`: "); i >= 0 {
			msg = rest[i+len("`: "):]
		}
	}
	return nil, scrub(fmt.Errorf("invalid database DSN %s: %s", Redact(dsn), msg), secrets)
}

// Close stops following events, closes every subscription and then the
// pool (waiting for the queries in flight).
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.hub.Close()
		s.pool.Close()
	})
	return nil
}

// Subscribe implements upstream.Store: the subscriber gets the events of
// every instance, as the follower reads them.
func (s *Store) Subscribe(buffer int) (<-chan upstream.Event, func()) {
	return s.hub.Subscribe(buffer)
}

// maxAttempts bounds how often Apply runs a batch whose transaction the
// server rolled back (deadlock, serialization failure) or that never
// reached it.
const maxAttempts = 4

// Apply implements upstream.Store.
func (s *Store) Apply(ctx context.Context, actions []upstream.Action) ([]upstream.Result, error) {
	if len(actions) == 0 {
		return []upstream.Result{}, nil
	}
	plan := upstream.NewPlan(actions)
	for attempt := 1; ; attempt++ {
		results, err := s.apply(ctx, plan)
		if err == nil {
			s.poke()
			return results, nil
		}
		if attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
		s.log.Debug("retrying a batch", "attempt", attempt, "err", err)
		select {
		case <-time.After(time.Duration(attempt*attempt) * 5 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("apply: %w", ctx.Err())
		}
	}
}

// retryable reports whether err left nothing committed, so that the batch
// can run again as if for the first time.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01" // serialization_failure, deadlock_detected
	}
	return pgconn.SafeToRetry(err)
}

func (s *Store) apply(ctx context.Context, plan *upstream.Plan) ([]upstream.Result, error) {
	// READ COMMITTED whatever the database's default: each statement sees
	// the keys committed before it, which the lookup below relies on.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.Background())

	n := len(plan.Keys)
	keys, statuses, errs := make([]string, n), make([]string, n), make([]string, n)
	for i, k := range plan.Keys {
		keys[i], statuses[i], errs[i] = k.Key, k.Status, k.Error
	}
	now := time.Now().UTC().Truncate(time.Microsecond) // what timestamptz keeps
	stored := map[string]upstream.Verdict{}
	won := map[string]bool{}
	if n > 0 {
		// Sorted, so that two batches lock common keys in one order.
		rows, err := tx.Query(ctx, `INSERT INTO synctray_keys (key, status, error, first_seen)
			SELECT k, s, e, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS u (k, s, e) ORDER BY k
			ON CONFLICT (key) DO NOTHING RETURNING key`, keys, statuses, errs, now)
		if err != nil {
			return nil, fmt.Errorf("record keys: %w", err)
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, fmt.Errorf("record keys: %w", err)
			}
			won[k] = true
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("record keys: %w", err)
		}
	}
	if len(won) < n {
		// The others were recorded before: by a committed batch, or by
		// one that committed while our INSERT waited for it. This
		// statement's snapshot sees both.
		var lost []string
		for _, k := range keys {
			if !won[k] {
				lost = append(lost, k)
			}
		}
		rows, err := tx.Query(ctx, `SELECT key, status, error FROM synctray_keys WHERE key = ANY($1)`, lost)
		if err != nil {
			return nil, fmt.Errorf("look up keys: %w", err)
		}
		for rows.Next() {
			var k string
			var v upstream.Verdict
			if err := rows.Scan(&k, &v.Status, &v.Error); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up keys: %w", err)
			}
			stored[k] = v
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("look up keys: %w", err)
		}
		if len(stored) != len(lost) {
			return nil, fmt.Errorf("look up keys: %d of %d keys seen before are missing", len(lost)-len(stored), len(lost))
		}
	}
	out := plan.Resolve(stored)

	// Last, the counters row: its lock orders the batches' cursors by
	// commit. It is held until the commit, so that everything from here
	// on is serialized across instances: one statement takes the
	// cursors, inserts the events and queues the notification (delivered
	// on commit, to every instance's listener).
	d, k := out.Delta, int64(len(out.Applied))
	if k == 0 {
		if _, err := tx.Exec(ctx, `UPDATE synctray_counters SET applied = applied + $1,
			duplicates = duplicates + $2, rejected = rejected + $3 WHERE id = 1`, d.Applied, d.Duplicates, d.Rejected); err != nil {
			return nil, fmt.Errorf("update counters: %w", err)
		}
	} else {
		evKeys, types, payloads, created := make([]string, k), make([]string, k), make([]string, k), make([]time.Time, k)
		for i, e := range out.Applied {
			evKeys[i], types[i], payloads[i], created[i] = e.Key, e.Type, string(e.Payload), e.CreatedAt
		}
		var last int64
		if err := tx.QueryRow(ctx, `WITH c AS (
				UPDATE synctray_counters SET last_cursor = last_cursor + $1,
					applied = applied + $2, duplicates = duplicates + $3, rejected = rejected + $4
				WHERE id = 1 RETURNING last_cursor
			), e AS (
				INSERT INTO synctray_events (cursor, key, type, payload, created_at, applied_at)
				SELECT c.last_cursor - $1 + u.ord, u.k, u.t, u.p, u.ca, $9
				FROM c, unnest($5::text[], $6::text[], $7::text[], $8::timestamptz[]) WITH ORDINALITY AS u (k, t, p, ca, ord)
			)
			SELECT last_cursor, pg_notify($10, last_cursor::text) FROM c`,
			k, d.Applied, d.Duplicates, d.Rejected, evKeys, types, payloads, created, now, Channel).Scan(&last, nil); err != nil {
			return nil, fmt.Errorf("record events: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out.Results, nil
}

// poke wakes the follower without blocking.
func (s *Store) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Events implements upstream.Store.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]upstream.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT cursor, key, type, payload, applied_at
		FROM synctray_events WHERE cursor > $1 ORDER BY cursor LIMIT $2`, after, upstream.EventLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	events := []upstream.Event{}
	for rows.Next() {
		var e upstream.Event
		var payload string
		if err := rows.Scan(&e.Cursor, &e.Key, &e.Type, &payload, &e.AppliedAt); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		e.Payload = []byte(payload)
		e.AppliedAt = e.AppliedAt.UTC()
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return events, nil
}

// Stats implements upstream.Store.
func (s *Store) Stats(ctx context.Context) (upstream.Stats, error) {
	var st upstream.Stats
	err := s.pool.QueryRow(ctx, `SELECT applied, duplicates, rejected FROM synctray_counters WHERE id = 1`).
		Scan(&st.Applied, &st.Duplicates, &st.Rejected)
	if err != nil {
		return upstream.Stats{}, fmt.Errorf("read stats: %w", err)
	}
	return st, nil
}

// AppliedKeys implements upstream.Store.
func (s *Store) AppliedKeys(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT key FROM synctray_events ORDER BY cursor`)
	if err != nil {
		return nil, fmt.Errorf("query applied keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("query applied keys: %w", err)
	}
	return keys, nil
}

// Ping implements upstream.Store: a round trip on a connection of the
// pool (it waits for one when all are busy). A connection that died
// while idle (the database restarted) fails its ping and leaves the
// pool: Ping then tries again, on another or a new one, as many times
// as the pool may hold connections.
func (s *Store) Ping(ctx context.Context) error {
	err := s.pool.Ping(ctx)
	for i := int32(0); err != nil && ctx.Err() == nil && i < s.pool.Config().MaxConns; i++ {
		err = s.pool.Ping(ctx)
	}
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// IntegrityCheck implements upstream.Store. It checks, in one snapshot,
// what the schema cannot say by itself: cursors run 1..last_cursor
// without gaps, every applied key has exactly one event and no rejected
// key has one, and the counters agree.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	var events, minCursor, maxCursor, appliedKeys, missing, wrong, lastCursor, applied int64
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM synctray_events),
		(SELECT coalesce(min(cursor), 0) FROM synctray_events),
		(SELECT coalesce(max(cursor), 0) FROM synctray_events),
		(SELECT count(*) FROM synctray_keys WHERE status = 'applied'),
		(SELECT count(*) FROM synctray_keys k WHERE status = 'applied'
			AND NOT EXISTS (SELECT 1 FROM synctray_events e WHERE e.key = k.key)),
		(SELECT count(*) FROM synctray_events e JOIN synctray_keys k USING (key) WHERE k.status <> 'applied'),
		c.last_cursor, c.applied
		FROM synctray_counters c WHERE c.id = 1`).
		Scan(&events, &minCursor, &maxCursor, &appliedKeys, &missing, &wrong, &lastCursor, &applied)
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	var problems []string
	if events > 0 && (minCursor != 1 || maxCursor != events) {
		problems = append(problems, fmt.Sprintf("%d events with cursors %d..%d: not 1..%d", events, minCursor, maxCursor, events))
	}
	if lastCursor != maxCursor {
		problems = append(problems, fmt.Sprintf("last_cursor %d, highest event %d", lastCursor, maxCursor))
	}
	if applied != events || appliedKeys != events {
		problems = append(problems, fmt.Sprintf("%d events, %d applied keys, applied counter %d", events, appliedKeys, applied))
	}
	if missing > 0 {
		problems = append(problems, fmt.Sprintf("%d applied keys without an event", missing))
	}
	if wrong > 0 {
		problems = append(problems, fmt.Sprintf("%d events of keys not applied", wrong))
	}
	if len(problems) > 0 {
		return fmt.Errorf("integrity check: %s", strings.Join(problems, "; "))
	}
	return nil
}

// follow hands the events committed after cursor last, by any instance,
// to the subscribers, reading them whenever woken and on every poll.
func (s *Store) follow(last int64) {
	defer s.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	failing := false
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		for {
			events, err := s.Events(s.ctx, last, upstream.MaxLimit)
			if err != nil {
				if s.ctx.Err() == nil && !failing {
					s.log.Warn("cannot read new events; retrying", "err", err)
				}
				failing = true
				break
			}
			if failing {
				s.log.Info("reading new events again")
				failing = false
			}
			s.hub.Publish(events)
			if len(events) > 0 {
				last = events[len(events)-1].Cursor
			}
			if len(events) < upstream.MaxLimit {
				break
			}
		}
		every := s.opts.SafetyPoll
		if !s.listening.Load() {
			every = s.opts.FallbackPoll
		}
		timer.Reset(every)
	}
}

// listenerPing is how long the listener waits for a notification before
// it checks that its connection is alive.
const listenerPing = 30 * time.Second

// listenLoop keeps a connection LISTENing on Channel, reconnecting with
// backoff, and wakes the follower on each notification and whenever the
// connection comes up or goes down (the follower then catches up and
// picks its poll interval).
func (s *Store) listenLoop() {
	defer s.wg.Done()
	backoff, down := 100*time.Millisecond, false
	for s.ctx.Err() == nil {
		err := s.listenOnce(func() {
			if down {
				s.log.Info("event listener is back")
			}
			down, backoff = false, 100*time.Millisecond
		})
		if s.ctx.Err() != nil {
			return
		}
		if !down {
			s.log.Warn("event listener is down; polling for new events", "every", s.opts.FallbackPoll, "err", err)
			down = true
		}
		select {
		case <-time.After(backoff):
		case <-s.ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnce connects, LISTENs (calling up once it does) and waits for
// notifications until the connection fails or the store closes.
func (s *Store) listenOnce(up func()) error {
	conn, err := s.dial(s.ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(s.ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	s.listenPID.Store(conn.PgConn().PID())
	s.listening.Store(true)
	defer func() {
		s.listening.Store(false)
		s.listenPID.Store(0)
		s.poke()
	}()
	up()
	s.poke() // catch up on what was committed while not listening
	for {
		ctx, cancel := context.WithTimeout(s.ctx, listenerPing)
		_, err := conn.WaitForNotification(ctx)
		cancel()
		switch {
		case err == nil:
			s.poke()
		case s.ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			pctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return err
		}
	}
}

// connectError says why connecting failed; a refused connection in the
// same words on every platform (Winsock's text differs).
func connectError(err error) error {
	if failure.IsConnRefused(err) {
		return fmt.Errorf("postgres store: connect: connection refused (is PostgreSQL running at the DSN's address?): %w", err)
	}
	return fmt.Errorf("postgres store: connect: %w", err)
}
