package localserver_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/httpup"
	"synctray/localserver/outbox"
	"synctray/localserver/readcache"
	"synctray/localserver/syncer"
)

// restServer is a minimal loopback REST backend for benchmarks: it
// applies each Idempotency-Key once, after an optional latency.
type restServer struct {
	latency time.Duration
	mu      sync.Mutex
	seen    map[string]bool
	applied atomic.Int64
}

func (s *restServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if s.latency > 0 {
		time.Sleep(s.latency)
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	if key != "" && !s.seen[key] {
		s.seen[key] = true
		s.applied.Add(1)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, `{"ok":true}`)
}

// postWrite POSTs a JSON body with a new Idempotency-Key (and the bearer
// token, unless empty) and reads the answer to its end.
func postWrite(client *http.Client, url, body, token string) (int, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", testsupport.NewKey())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// BenchmarkHTTPReplay measures how fast a backlog of 10,000 queued writes
// replays to a loopback REST server in HTTP mode: one in flight (order
// kept) at 0 and 5 ms of server latency, and 16 in flight at 5 ms. Each
// case runs "direct" first: a plain Go client sending the same 10,000
// requests with as many in flight, which is what this machine allows.
func BenchmarkHTTPReplay(b *testing.B) {
	const backlog = 10000
	for _, c := range []struct {
		latency     time.Duration
		concurrency int
	}{{0, 1}, {5 * time.Millisecond, 1}, {5 * time.Millisecond, 16}} {
		name := fmt.Sprintf("latency=%v/in-flight=%d", c.latency, c.concurrency)
		b.Run(name+"/direct", func(b *testing.B) {
			for range b.N {
				srv := &restServer{latency: c.latency, seen: map[string]bool{}}
				ts := httptest.NewServer(srv)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
				var next atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for range c.concurrency {
					wg.Go(func() {
						for i := next.Add(1); i <= backlog; i = next.Add(1) {
							if _, err := postWrite(client, ts.URL+"/todos", fmt.Sprintf(`{"title":"todo %d"}`, i), ""); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(backlog/time.Since(start).Seconds(), "writes/s")
				ts.Close()
			}
		})
		b.Run(name+"/synctray", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				srv := &restServer{latency: c.latency, seen: map[string]bool{}}
				ts := httptest.NewServer(srv)
				e := startHost(b, localserver.Config{DataDir: b.TempDir(), UpstreamURL: ts.URL, UpstreamProtocol: localserver.ProtocolHTTP,
					WorkOffline: true, Sync: syncer.Options{Concurrency: c.concurrency}})
				ns := make([]outbox.NewAction, 0, 1000)
				for i := range backlog {
					raw, _ := httpup.Request{Method: "POST", Path: "/todos", Header: map[string]string{"Content-Type": "application/json"},
						Body: []byte(fmt.Sprintf(`{"title":"todo %d"}`, i))}.Payload()
					ns = append(ns, outbox.NewAction{Key: testsupport.NewKey(), Type: httpup.ActionType, Payload: raw})
					if len(ns) == cap(ns) {
						if _, err := e.host.Outbox().EnqueueBatch(context.Background(), ns); err != nil {
							b.Fatal(err)
						}
						ns = ns[:0]
					}
				}
				b.StartTimer()
				start := time.Now()
				e.host.SetWorkOffline(context.Background(), false)
				// Polled gently: a query every millisecond would take CPU
				// from the replay it measures.
				for srv.applied.Load() < backlog {
					time.Sleep(5 * time.Millisecond)
				}
				for {
					c, _ := e.host.Outbox().Counts(context.Background())
					if c[outbox.Synced] == backlog {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(backlog/elapsed.Seconds(), "writes/s")
				e.stop()
				ts.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkHTTPWriteOverhead measures the latency a write through
// /upstream/ adds (durable commit, replay, answer) over sending the same
// request straight to the upstream, with 16 clients (the target) and with
// one (the floor, without queueing), online, wait mode.
func BenchmarkHTTPWriteOverhead(b *testing.B) {
	srv := &restServer{seen: map[string]bool{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	e := startHost(b, localserver.Config{DataDir: b.TempDir(), UpstreamURL: ts.URL, UpstreamProtocol: localserver.ProtocolHTTP,
		Sync: syncer.Options{Concurrency: 16}})
	defer e.stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := `{"title":"a todo of a typical length, with a few words"}`
	measure := func(b *testing.B, url, token string, clients int) []time.Duration {
		var mu sync.Mutex
		var lat []time.Duration
		var next atomic.Int64
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				var mine []time.Duration
				defer func() {
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}()
				for next.Add(1) <= int64(b.N) {
					t0 := time.Now()
					code, err := postWrite(client, url, body, token)
					if err != nil {
						b.Error(err)
						return
					}
					if code != http.StatusCreated {
						b.Errorf("status %d", code)
						return
					}
					mine = append(mine, time.Since(t0))
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		return lat
	}
	report := func(b *testing.B, lat []time.Duration) {
		if len(lat) == 0 {
			return
		}
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	for _, clients := range []int{16, 1} {
		b.Run(fmt.Sprintf("clients=%d/direct", clients), func(b *testing.B) { report(b, measure(b, ts.URL+"/todos", "", clients)) })
		b.Run(fmt.Sprintf("clients=%d/through-synctray", clients), func(b *testing.B) {
			report(b, measure(b, e.url+"/upstream/todos", e.token, clients))
		})
	}
}

// BenchmarkHTTPCachedReads measures reads through /upstream/ while the
// upstream is down, through a real host in HTTP mode on loopback (the
// guard, the security headers, the read cache): 16 clients, each GET
// with the host's token as the CLI sends it, read 100 URLs round-robin
// (~2 KiB of JSON each) whose answers were stored by one GET each while
// the upstream answered; then the upstream was closed (every connect
// refused). "direct" runs first: the same 16 clients against a plain
// net/http server serving the same bytes, which is what this machine
// allows. readcache's BenchmarkOfflineReads measures its Handler alone.
func BenchmarkHTTPCachedReads(b *testing.B) {
	const urls, clients = 100, 16
	body := `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"id":12345,"title":"buy milk","done":false},`, 45), ",") + `]}`
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"abc"`)
		io.WriteString(w, body)
	})
	up := httptest.NewServer(serve)
	e := startHost(b, localserver.Config{DataDir: b.TempDir(), UpstreamURL: up.URL, UpstreamProtocol: localserver.ProtocolHTTP})
	defer e.stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * clients}}
	get := func(url, token string) (*http.Response, error) {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			return nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && (resp.StatusCode != http.StatusOK || n != int64(len(body))) {
			err = fmt.Errorf("GET %s: %d, %d bytes", url, resp.StatusCode, n)
		}
		return resp, err
	}
	for i := range urls {
		resp, err := get(fmt.Sprintf("%s/upstream/todos?page=%d", e.url, i), e.token)
		if err != nil {
			b.Fatal(err)
		}
		if got := resp.Header.Get(readcache.HeaderCache); got != readcache.CacheStored {
			b.Fatalf("warm-up: %s = %q, want %q", readcache.HeaderCache, got, readcache.CacheStored)
		}
	}
	up.Close() // the upstream is down
	plain := httptest.NewServer(serve)
	defer plain.Close()

	measure := func(b *testing.B, base, token, wantCache string) {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Go(func() {
				for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
					resp, err := get(fmt.Sprintf("%s/todos?page=%d", base, i%urls), token)
					if err != nil {
						b.Error(err)
						return
					}
					if got := resp.Header.Get(readcache.HeaderCache); got != wantCache {
						b.Errorf("%s = %q, want %q", readcache.HeaderCache, got, wantCache)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	}
	b.Run(fmt.Sprintf("clients=%d/direct", clients), func(b *testing.B) { measure(b, plain.URL, "", "") })
	b.Run(fmt.Sprintf("clients=%d/through-synctray", clients), func(b *testing.B) {
		measure(b, e.url+"/upstream", e.token, readcache.CacheOffline)
	})
}
