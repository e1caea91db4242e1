package localserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
	"synctray/localserver/syncer"
	"synctray/upstream"
)

// BenchmarkEnqueueHTTP measures durable enqueues (synchronous=FULL, group
// commit) through POST /api/actions with 64 concurrent clients over
// loopback, with time-ordered (UUIDv7) keys as the PWA makes them.
func BenchmarkEnqueueHTTP(b *testing.B) {
	e := startHost(b, localserver.Config{DataDir: b.TempDir(), WorkOffline: true})
	defer e.stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}}
	body := `{"type":"message","payload":{"text":"hello from the benchmark, a message of a typical length"}}`

	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			req, _ := http.NewRequest("POST", e.url+"/api/actions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.token)
			req.Header.Set("Idempotency-Key", testsupport.NewKey())
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body) // so the connection is reused
			resp.Body.Close()
			mine = append(mine, time.Since(t0))
			if resp.StatusCode != 202 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "actions/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkDrain100k measures how fast a backlog of 100,000 queued actions
// drains to the reference upstream over loopback (both durable).
func BenchmarkDrain100k(b *testing.B) {
	const backlog = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		fill(b, filepath.Join(dir, "outbox.db"), backlog)
		_, upStore, upURL := testupstream.Start(b, upstream.Options{})
		e := startHost(b, localserver.Config{DataDir: dir, UpstreamURL: upURL, WorkOffline: true,
			Sync: syncer.Options{BatchSize: benchBatch}})
		b.StartTimer()
		start := time.Now()
		rep, err := e.host.Engine().SyncNow(context.Background())
		elapsed := time.Since(start)
		b.StopTimer()
		if err != nil || rep.Err != nil || rep.Synced != backlog {
			b.Fatalf("SyncNow = %+v, %v", rep, err)
		}
		st, _ := upStore.Stats(context.Background())
		if st.Applied != backlog {
			b.Fatalf("upstream applied %d, want %d", st.Applied, backlog)
		}
		b.ReportMetric(backlog/elapsed.Seconds(), "actions/s")
		e.stop()
		b.StartTimer()
	}
}

const benchBatch = 500

func fill(b *testing.B, path string, n int) {
	db, err := outboxdb.Open(path, outboxdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	batch := make([]outbox.NewAction, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, outbox.NewAction{Key: testsupport.NewKey(), Type: "message",
			Payload: json.RawMessage(fmt.Sprintf(`{"text":"backlog message %d"}`, i))})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := db.EnqueueBatch(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
