package outboxdb

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"synctray/internal/sqlitedb"
	"synctray/internal/testsupport"
	"synctray/localserver/outbox"
)

// benchClients is how many concurrent enqueuers the parallel benchmarks
// run (b.SetParallelism multiplies GOMAXPROCS), like HTTP clients.
const benchClients = 64

func benchEnqueue(b *testing.B, newKey func() string) {
	db := mustOpen(b, Options{Now: time.Now})
	payload := json.RawMessage(`{"note":"buy milk","list":"groceries","qty":2,"tags":["home","weekly"]}`)
	b.SetParallelism(max(1, benchClients/max(1, testingProcs())))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, created, err := db.Enqueue(ctx, outbox.NewAction{Key: testsupport.NewKey(), Type: "note.create", Payload: payload})
			if err != nil || !created {
				b.Errorf("Enqueue: created=%v err=%v", created, err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "actions/s")
}

// BenchmarkEnqueueParallel: concurrent enqueues with time-ordered (v7)
// keys, group-committed with synchronous=FULL.
func BenchmarkEnqueueParallel(b *testing.B) {
	benchEnqueue(b, testsupport.NewKey)
}

// BenchmarkEnqueueParallelRandomKeys: the same with random (v4) keys,
// which land all over the key index.
func BenchmarkEnqueueParallelRandomKeys(b *testing.B) {
	benchEnqueue(b, func() string { return uuid.New().String() })
}

// BenchmarkEnqueueSerial: one client at a time, one commit (fsync) each.
func BenchmarkEnqueueSerial(b *testing.B) {
	db := mustOpen(b, Options{Now: time.Now})
	payload := json.RawMessage(`{"note":"buy milk"}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := db.Enqueue(ctx, outbox.NewAction{Key: testsupport.NewKey(), Type: "note.create", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListPage100k lists pages of a 100,000-action outbox: the first
// page, a page deep in the table, and a page filtered by state.
func BenchmarkListPage100k(b *testing.B) {
	db := mustOpen(b, Options{Now: time.Now})
	const rows = 100_000
	start := time.Now()
	bulkInsert(b, db, rows)
	b.Logf("built %d rows in %v", rows, time.Since(start).Round(time.Millisecond))
	for _, q := range []outbox.ListQuery{
		{Limit: 50},
		{Limit: 50, Before: rows / 2},
		{Limit: 50, State: outbox.Failed},
		{Limit: 50, State: outbox.Queued, Before: 1000},
		{Limit: 1000},
	} {
		name := fmt.Sprintf("limit=%d/before=%d/state=%s", q.Limit, q.Before, q.State)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p, err := db.List(ctx, q)
				if err != nil || len(p.Actions) == 0 {
					b.Fatalf("List: %d actions, %v", len(p.Actions), err)
				}
			}
		})
	}
	b.Run("counts", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := db.Counts(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQuickCheck1M measures PRAGMA quick_check, which Open runs on
// every start, on a 100,000- and then a 1,000,000-action outbox (each
// action with one history row), warm page cache.
func BenchmarkQuickCheck1M(b *testing.B) {
	path := filepath.Join(b.TempDir(), "outbox.db")
	db := mustOpenAt(b, path, Options{Now: time.Now})
	have := 0
	for _, rows := range []int{100_000, 1_000_000} {
		start := time.Now()
		bulkInsert(b, db, rows-have)
		have = rows
		if _, err := db.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			b.Fatal(err)
		}
		fi, _ := os.Stat(path)
		b.Logf("built %d rows (%d MiB) in %v", rows, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			for b.Loop() {
				if err := sqlitedb.QuickCheck(ctx, db.r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
