package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"synctray/internal/testsupport/pgtest"
	"synctray/upstream"
	"synctray/upstream/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions poll only once an hour: events reach other instances'
// subscribers through NOTIFY, or not at all.
func testOptions() Options {
	return Options{Logger: quiet, FallbackPoll: time.Hour, SafetyPoll: time.Hour}
}

func openT(t *testing.T, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connT(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.DB {
		dsn := pgtest.DB(t)
		return storetest.DB{
			Open: func() (upstream.Store, error) {
				// Stores not listening yet poll every second: wait, so
				// that events come through NOTIFY.
				s, err := Open(context.Background(), dsn, testOptions())
				if err == nil {
					waitListening(t, s)
				}
				return s, err
			},
			Shared: true,
			BumpSchema: func() error {
				conn := connT(t, dsn)
				_, err := conn.Exec(context.Background(), `UPDATE synctray_schema SET version = version + 1`)
				return err
			},
		}
	})
}

func waitListening(t *testing.T, s *Store) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !s.listening.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not connect in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func receiveKeys(t *testing.T, ch <-chan upstream.Event, n int, within time.Duration) string {
	t.Helper()
	var keys []string
	timeout := time.After(within)
	for len(keys) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed after %v", keys)
			}
			keys = append(keys, e.Key)
		case <-timeout:
			t.Fatalf("got %v of %d events in %v", keys, n, within)
		}
	}
	return strings.Join(keys, ",")
}

func apply(t *testing.T, s upstream.Store, keys ...string) string {
	t.Helper()
	var batch []upstream.Action
	for _, k := range keys {
		batch = append(batch, storetest.Act(k, "t", `{}`))
	}
	res, err := s.Apply(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Statuses(res)
}

func TestSubscribersGetEventsByPollingWhileTheListenerIsDown(t *testing.T) {
	dsn := pgtest.DB(t)
	opts := testOptions()
	opts.FallbackPoll = 50 * time.Millisecond
	opts.dial = func(context.Context) (*pgx.Conn, error) { return nil, errors.New("no listening today") }
	a := openT(t, dsn, opts)
	b := openT(t, dsn, testOptions())
	ch, cancel := a.Subscribe(10)
	defer cancel()
	apply(t, b, "x", "y")
	if got := receiveKeys(t, ch, 2, 10*time.Second); got != "x,y" {
		t.Fatalf("got %s", got)
	}
	if a.listening.Load() {
		t.Fatal("listening without a connection")
	}
}

func TestTheListenerReconnectsAndCatchesUp(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openT(t, dsn, testOptions()), openT(t, dsn, testOptions())
	waitListening(t, a)
	ch, cancel := a.Subscribe(10)
	defer cancel()
	apply(t, b, "before")
	if got := receiveKeys(t, ch, 1, 10*time.Second); got != "before" {
		t.Fatalf("got %s", got)
	}

	// Kill the listener's backend, as a database restart or a network cut
	// would; apply at once, possibly while it is down (no NOTIFY then).
	pid := a.listenPID.Load()
	admin := connT(t, dsn)
	if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, int32(pid)); err != nil {
		t.Fatal(err)
	}
	apply(t, b, "during")
	// With polls an hour apart, only the catch-up on reconnecting or a
	// notification after it can deliver these.
	if got := receiveKeys(t, ch, 1, 20*time.Second); got != "during" {
		t.Fatalf("got %s", got)
	}
	for deadline := time.Now().Add(20 * time.Second); a.listenPID.Load() == pid || a.listenPID.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not reconnect in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	apply(t, b, "after")
	if got := receiveKeys(t, ch, 1, 10*time.Second); got != "after" {
		t.Fatalf("got %s", got)
	}
}

func TestKeysHeldByADeadInstanceAreAppliedOnceItsTransactionIsGone(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	s := openT(t, dsn, testOptions())
	// An instance in the middle of a batch: k1 inserted, not committed.
	dead := connT(t, dsn)
	tx, err := dead.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO synctray_keys (key, status, first_seen) VALUES ('k1', 'applied', now())`); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		res, err := s.Apply(ctx, []upstream.Action{storetest.Act("k0", "t", `{}`), storetest.Act("k1", "t", `{}`)})
		if err != nil {
			done <- err.Error()
			return
		}
		done <- storetest.Statuses(res)
	}()
	select {
	case got := <-done:
		t.Fatalf("Apply did not wait for the other transaction's key: %s", got)
	case <-time.After(300 * time.Millisecond):
	}
	// The instance dies: PostgreSQL rolls its transaction back.
	admin := connT(t, dsn)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(dead.PgConn().PID())); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got != "k0=applied k1=applied" {
			t.Fatalf("got %s", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Apply still waiting 20s after the other transaction died")
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestInstancesStartingTogetherMigrateOnce(t *testing.T) {
	dsn := pgtest.DB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn, testOptions())
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	from, to, err := Migrate(context.Background(), dsn, Options{})
	if err != nil || from != SchemaVersion() || to != SchemaVersion() {
		t.Fatalf("Migrate = %d, %d, %v; want %d, %d (nothing to do)", from, to, err, SchemaVersion(), SchemaVersion())
	}
}

func TestMigrateRunsTheMigrationsAndRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	from, to, err := Migrate(ctx, dsn, Options{})
	if err != nil || from != 0 || to != SchemaVersion() {
		t.Fatalf("Migrate = %d, %d, %v; want 0, %d", from, to, err, SchemaVersion())
	}
	var n int
	if err := connT(t, dsn).QueryRow(ctx, `SELECT count(*) FROM synctray_events`).Scan(&n); err != nil {
		t.Fatalf("no events table after Migrate: %v", err)
	}
	if _, err := connT(t, dsn).Exec(ctx, `UPDATE synctray_schema SET version = 99`); err != nil {
		t.Fatal(err)
	}
	_, _, err = Migrate(ctx, dsn, Options{})
	if !errors.Is(err, upstream.ErrNewerSchema) || !strings.Contains(err.Error(), "version 99") {
		t.Fatalf("err = %v, want ErrNewerSchema naming version 99", err)
	}
}

func TestPoolSize(t *testing.T) {
	s := openT(t, pgtest.DB(t), Options{Logger: quiet, PoolSize: 3})
	if got := s.pool.Config().MaxConns; got != 3 {
		t.Fatalf("MaxConns = %d, want 3", got)
	}
	if _, err := Open(context.Background(), pgtest.DB(t), Options{PoolSize: -1}); err == nil {
		t.Fatal("opened with a pool of -1")
	}
}

func TestOpenErrorsAreShortAndHideThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://alice:s3cr3t-pw@127.0.0.1:notaport/db",
		"postgres://alice:s3cr3t-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=5",
		"postgresql://alice@127.0.0.1:1/db?password=s3cr3t-pw&sslmode=disable",
		"host=127.0.0.1 port=1 user=alice password=s3cr3t-pw sslmode=disable",
		"host=127.0.0.1 port=1 user=alice password='s3cr3t-pw' sslmode=bogus",
		"postgres://alice:s3cr3t-pw@[::1/db",
	} {
		t.Run(Redact(dsn), func(t *testing.T) {
			s, err := Open(context.Background(), dsn, Options{Logger: quiet, ConnectTimeout: 5 * time.Second})
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			msg := err.Error()
			if strings.Contains(msg, "s3cr3t") {
				t.Fatalf("the error shows the password: %s", msg)
			}
			if len(msg) > 300 || strings.Contains(msg, "\n") {
				t.Fatalf("error not one short line (%d bytes): %s", len(msg), msg)
			}
			t.Log(msg)
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:pw@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db", "postgres://h/db"},
		{"postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:xxxxx@h/db?sslmode=require"},
		{"postgres://u:p@ss@h/db?application_name=a@b", "postgres://u:xxxxx@h/db?application_name=a@b"},
		{"postgres://u@h/db?password=pw&x=1", "postgres://u@h/db?password=xxxxx&x=1"},
		{"postgres://u:pw@h:bad/db", "postgres://u:xxxxx@h:bad/db"},
		{"host=h password=pw user=u", "host=h password=xxxxx user=u"},
		{"host=h password = 'p w\\'x' user=u", "host=h password = xxxxx user=u"},
		{"host=h user=u", "host=h user=u"},
		{"mysql://u:pw@h/db", "mysql://u:xxxxx@h/db"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			dsn := pgtest.DB(b)
			stores := make([]*Store, 2)
			for i := range stores {
				s, err := Open(context.Background(), dsn, Options{Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				stores[i] = s
			}
			var n sync.Mutex
			next := 0
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				n.Lock()
				s := stores[next%2]
				id := next
				next++
				n.Unlock()
				i := 0
				for pb.Next() {
					batch := make([]upstream.Action, size)
					for j := range batch {
						batch[j] = storetest.Act(fmt.Sprintf("g%d-%d-%d", id, i, j), "t", `{"n":1}`)
					}
					i++
					if _, err := s.Apply(context.Background(), batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "actions/s")
		})
	}
}
