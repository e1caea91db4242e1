package pgstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport/pgtest"
	"synctray/upstream"
	"synctray/upstream/storetest"

	"synctray/internal/testsupport"
)

// TestEveryInstanceStreamsEveryInstancesEvents runs two upstream servers
// on one database: a host following /v1/events/ws on one gets what
// clients sent to the other.
func TestEveryInstanceStreamsEveryInstancesEvents(t *testing.T) {
	dsn := pgtest.DB(t)
	var clients []*upstream.Client
	for range 2 {
		s := openT(t, dsn, testOptions())
		waitListening(t, s)
		srv := upstream.NewServer(s, upstream.Options{Logger: quiet})
		ts := httptest.NewServer(srv)
		t.Cleanup(func() { srv.Close(); ts.Close() })
		clients = append(clients, &upstream.Client{BaseURL: ts.URL, HTTP: ts.Client()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan upstream.Event, 10)
	done := make(chan error, 1)
	// Polling an hour apart: only the WebSocket can deliver in time.
	go func() { done <- clients[0].Follow(ctx, 0, time.Hour, func(e upstream.Event) { events <- e }) }()
	defer func() { cancel(); <-done }()

	var got []string
	for i, key := range []string{"one", "two", "three"} {
		res, err := clients[(i+1)%2].Send(context.Background(), []upstream.Action{storetest.Act(key, "note", `{}`)})
		if err != nil || res[0].Status != upstream.StatusApplied {
			t.Fatalf("send %s: %v %v", key, res, err)
		}
		select {
		case e := <-events:
			got = append(got, e.Key)
		case <-time.After(10 * time.Second):
			t.Fatalf("no event for %s in 10s (got %v)", key, got)
		}
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("got %v", got)
	}
}

// TestHealthzAndMetricsOfAPostgreSQLUpstream checks that /healthz follows
// the database (503 while it refuses connections, 200 again after) and
// that /metrics serves the pool's statistics.
func TestHealthzAndMetricsOfAPostgreSQLUpstream(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	opts := testOptions()
	opts.PoolSize = 3
	s := openT(t, dsn, opts)
	srv := upstream.NewServer(s, upstream.Options{Logger: quiet, Token: "tok"})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	c := &upstream.Client{BaseURL: ts.URL, Token: "tok", HTTP: ts.Client()}
	if _, err := c.Send(ctx, []upstream.Action{storetest.Act("a", "t", `{}`)}); err != nil {
		t.Fatal(err)
	}

	code, body := testsupport.Get(t, ts.URL+"/metrics", "tok")
	if code != 200 {
		t.Fatalf("metrics: %d %s", code, body)
	}
	for _, want := range []string{
		"synctray_upstream_db_pool_max_conns 3",
		"synctray_upstream_db_pool_acquired_conns ", // the follower may hold one
		"synctray_upstream_db_pool_idle_conns ",
		"synctray_upstream_db_pool_total_conns ",
		"synctray_upstream_db_pool_acquires_total ",
		"synctray_upstream_db_pool_acquire_waits_total ",
		"synctray_upstream_db_pool_acquire_wait_seconds_total ",
		`synctray_upstream_actions_total{result="applied"} 1`,
	} {
		if !strings.Contains(body, "\n"+want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if code, _ := testsupport.Get(t, ts.URL+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("metrics without the token: %d, want 401", code)
	}

	if code, body := testsupport.Get(t, ts.URL+"/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	// The database goes away: no new connections, the pool's are cut.
	name := s.pool.Config().ConnConfig.Database
	admin := connT(t, pgtest.WithDatabase(dsn, "postgres"))
	for _, q := range []string{
		`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + name + `' AND pid <> pg_backend_pid()`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	code, body = testsupport.Get(t, ts.URL+"/healthz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "database_unreachable") || strings.Contains(body, name) {
		t.Fatalf("healthz with the database gone: %d %s; want 503 database_unreachable, naming nothing", code, body)
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	if code, body := testsupport.Get(t, ts.URL+"/healthz", ""); code != 200 {
		t.Fatalf("healthz with the database back: %d %s", code, body)
	}
}
