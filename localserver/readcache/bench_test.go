package readcache_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"synctray/localserver/readcache"
)

// benchClients is how many concurrent page clients the offline-read
// benchmark runs (b.SetParallelism multiplies GOMAXPROCS).
const benchClients = 16

// BenchmarkOfflineReads: 16 clients read 100 stored answers (~2 KiB of
// JSON each) over loopback HTTP through the Handler while the upstream is
// down (connection refused). "default" is the defaults (the in-memory hot
// copy, DownFor 1 s); "dial-every-read" tries the upstream on every read
// (DownFor < 0); "sqlite-only" reads every answer from SQLite (no hot
// copy). This is the Handler alone; localserver's BenchmarkHTTPCachedReads
// measures the same reads through a running host.
func BenchmarkOfflineReads(b *testing.B) {
	for _, tc := range []struct {
		name    string
		hot     int64
		downFor time.Duration
	}{{"default", 0, 0}, {"dial-every-read", 0, -1}, {"sqlite-only", -1, 0}} {
		b.Run(tc.name, func(b *testing.B) { benchOfflineReads(b, tc.hot, tc.downFor) })
	}
}

func benchOfflineReads(b *testing.B, hot int64, downFor time.Duration) {
	const urls = 100
	body := `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"id":12345,"title":"buy milk","done":false},`, 45), ",") + `]}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"abc"`)
		io.WriteString(w, body)
	}))
	base, _ := url.Parse(up.URL + "/api")
	c := mustOpen(b, filepath.Join(b.TempDir(), "cache.db"), readcache.Options{HotBytes: hot})
	host := httptest.NewServer(readcache.Handler(readcache.HandlerOptions{Upstream: base, Cache: c, Logger: quiet, DownFor: downFor}))
	defer host.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * benchClients}}
	for i := range urls {
		resp, err := client.Get(fmt.Sprintf("%s/upstream/todos?page=%d", host.URL, i))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get(readcache.HeaderCache) != readcache.CacheStored {
			b.Fatalf("prefill: %s = %q", readcache.HeaderCache, resp.Header.Get(readcache.HeaderCache))
		}
	}
	up.Close() // the upstream is down: connections are refused

	var n atomic.Int64
	b.SetParallelism(max(1, (benchClients+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) % urls
			resp, err := client.Get(fmt.Sprintf("%s/upstream/todos?page=%d", host.URL, i))
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get(readcache.HeaderCache) != readcache.CacheOffline {
				b.Errorf("offline read: %d %s %v", resp.StatusCode, resp.Header.Get(readcache.HeaderCache), err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}
