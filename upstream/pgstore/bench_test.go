package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/pgtest"
	"synctray/upstream"
)

// Sizes of BenchmarkUpstream64Hosts: 64 hosts each sending one batch of
// 250 at a time (the engine's default batch), as a fleet behind the
// upstream would.
const (
	benchHosts = 64
	benchBatch = 250
)

// BenchmarkUpstream64Hosts measures applied actions/s and batch latency
// with 64 concurrent senders of batches of 250 new UUIDv7 keys: on the
// SQLite store, on one PostgreSQL instance, and on two instances sharing
// one database (each sender pinned to one), calling Store.Apply directly
// and posting to /v1/actions over loopback HTTP (JSON both ways, the
// server's checks). One op is one batch. Run with a fixed count, e.g.
// -benchtime 400x (100,000 actions).
func BenchmarkUpstream64Hosts(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres-1", "postgres-2"} {
		for _, via := range []string{"apply", "http"} {
			b.Run(kind+"/"+via, func(b *testing.B) {
				stores := openBenchStores(b, kind)
				send := make([]func(context.Context, []upstream.Action) ([]upstream.Result, error), len(stores))
				for i, s := range stores {
					send[i] = s.Apply
					if via == "http" {
						srv := upstream.NewServer(s, upstream.Options{Logger: quiet, Token: "bench"})
						ts := httptest.NewServer(srv)
						b.Cleanup(func() { srv.Close(); ts.Close() })
						hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchHosts}}
						send[i] = (&upstream.Client{BaseURL: ts.URL, Token: "bench", HTTP: hc}).Send
					}
				}
				runHosts(b, send)
			})
		}
	}
}

// openBenchStores opens the stores of kind, closed when b ends.
func openBenchStores(b *testing.B, kind string) []upstream.Store {
	b.Helper()
	var stores []upstream.Store
	switch kind {
	case "sqlite":
		s, err := upstream.OpenStore(filepath.Join(b.TempDir(), "upstream.db"))
		if err != nil {
			b.Fatal(err)
		}
		stores = append(stores, s)
	default:
		dsn := pgtest.DB(b)
		n := 1
		if kind == "postgres-2" {
			n = 2
		}
		for range n {
			// The pool of `synctray upstream --db`'s default --db-pool.
			s, err := Open(context.Background(), dsn, Options{Logger: quiet, PoolSize: 10})
			if err != nil {
				b.Fatal(err)
			}
			stores = append(stores, s)
		}
	}
	for _, s := range stores {
		b.Cleanup(func() { s.Close() })
	}
	return stores
}

// runHosts sends b.N batches from benchHosts goroutines, host i through
// send[i%len(send)], and reports actions/s and batch latency.
func runHosts(b *testing.B, send []func(context.Context, []upstream.Action) ([]upstream.Result, error)) {
	b.Helper()
	// The batches are made before the clock starts.
	batches := make([][]upstream.Action, b.N)
	now := time.Now()
	for i := range batches {
		batch := make([]upstream.Action, benchBatch)
		for j := range batch {
			batch[j] = upstream.Action{Key: testsupport.NewKey(), Type: "message", CreatedAt: now,
				Payload: json.RawMessage(fmt.Sprintf(`{"text":"message %d of batch %d, from a host of the fleet"}`, j, i))}
		}
		batches[i] = batch
	}
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for h := range benchHosts {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				t0 := time.Now()
				res, err := send[h%len(send)](context.Background(), batches[i])
				lat[i] = time.Since(t0)
				if err != nil || len(res) != benchBatch || res[0].Status != upstream.StatusApplied {
					b.Errorf("batch %d: %v (%d results)", i, err, len(res))
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N*benchBatch)/elapsed.Seconds(), "actions/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op") // a batch's time alone says little with 64 in flight
}
