//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/pgtest"
	"synctray/localserver"
	"synctray/localserver/syncer"
	"synctray/upstream/pgstore"
)

// fleetHost is one in-process local host of the fleet test, pinned to
// one upstream instance; it can be restarted on its data dir pinned to
// the other.
type fleetHost struct {
	i   int
	dir string
	log *slog.Logger

	mu      sync.Mutex
	up      int    // the instance it is pinned to
	upURL   string // that instance's URL
	url     string // the host's own base URL while it runs
	token   string
	cancel  context.CancelFunc
	done    chan error
	readers sync.WaitGroup

	// What the host announced to its pages (the hub's "message"
	// events), across restarts, in order.
	recvMu   sync.Mutex
	received []string
	cursors  []int64
	dropped  bool // its hub dropped our subscription (a test problem)
	stopping atomic.Bool
}

// start opens the host on its data dir, pinned to upURL, subscribes to
// its hub and runs it.
func (fh *fleetHost) start(t *testing.T, token string) {
	t.Helper()
	fh.mu.Lock()
	defer fh.mu.Unlock()
	h, err := localserver.Open(localserver.Config{
		DataDir: fh.dir, Addr: "127.0.0.1:0", UpstreamURL: fh.upURL, UpstreamToken: token, Logger: fh.log,
		// Room for the test's subscription to fall behind while the host
		// catches up on a backlog of events (a page would resync).
		HubBuffer: 1 << 14,
		// Back off briefly: an instance killed here is back in a moment.
		Sync: syncer.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, ProbeEvery: 200 * time.Millisecond},
	})
	if err != nil {
		t.Errorf("host %d: open: %v", fh.i, err)
		return
	}
	// Subscribed before Run: the follower starts in Run.
	sub := h.Hub().Subscribe(0)
	fh.stopping.Store(false)
	fh.readers.Go(func() {
		for ev := range sub.C {
			if ev.Kind == "message" {
				fh.recvMu.Lock()
				fh.received = append(fh.received, ev.Message.Key)
				fh.cursors = append(fh.cursors, ev.Message.Cursor)
				fh.recvMu.Unlock()
			}
		}
		if !fh.stopping.Load() {
			fh.recvMu.Lock()
			fh.dropped = true
			fh.recvMu.Unlock()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	fh.url, fh.token, fh.cancel, fh.done = h.URL(), h.Token(), cancel, make(chan error, 1)
	go func() { fh.done <- h.Run(ctx) }()
}

// stop shuts the host down as the tray's Quit would, and waits.
func (fh *fleetHost) stop(t *testing.T) {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if fh.cancel == nil {
		return
	}
	fh.stopping.Store(true)
	fh.cancel()
	fh.cancel, fh.url = nil, ""
	select {
	case err := <-fh.done:
		if err != nil {
			t.Errorf("host %d: Run: %v", fh.i, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("host %d did not stop within 30 s", fh.i)
	}
	fh.readers.Wait()
}

// endpoint returns the running host's URL and API token ("" while it is
// restarting).
func (fh *fleetHost) endpoint() (string, string) {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	return fh.url, fh.token
}

func (fh *fleetHost) status(ctx context.Context) (localserver.Status, bool) {
	url, token := fh.endpoint()
	if url == "" {
		return localserver.Status{}, false
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/status", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return localserver.Status{}, false
	}
	defer resp.Body.Close()
	var st localserver.Status
	return st, resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&st) == nil
}

// enqueue posts one action with key to the running host and returns its
// outbox id once the host acknowledged it (202 new, 200 known).
func (fh *fleetHost) enqueue(ctx context.Context, hc *http.Client, key, payload string) (int64, bool) {
	url, tok := fh.endpoint()
	if url == "" {
		return 0, false
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/api/actions", strings.NewReader(`{"type":"message","payload":`+payload+`}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Idempotency-Key", key)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var a struct {
		ID  int64  `json:"id"`
		Key string `json:"key"`
	}
	err = json.NewDecoder(resp.Body).Decode(&a)
	io.Copy(io.Discard, resp.Body)
	ok := (resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK) && err == nil && a.Key == key && a.ID > 0
	return a.ID, ok
}

func (fh *fleetHost) receivedCount() int {
	fh.recvMu.Lock()
	defer fh.recvMu.Unlock()
	return len(fh.received)
}

// TestFleet runs the team setup of docs/deploy.md under failure: two real
// `synctray upstream` processes on one PostgreSQL database and 20 local
// hosts (in process, over loopback HTTP), each pinned to one instance and
// enqueueing 1,000 actions through POST /api/actions, one at a time. Half
// of the hosts are restarted mid-run on their data dir pinned to the
// other instance; one instance is killed with SIGKILL at least 5 times
// and started again on its port. Then: every acknowledged action is
// applied exactly once, each host's actions are in the event log in its
// enqueue order, every host announced every action (its own and the
// others') exactly once and in cursor order, and no outbox holds
// anything but synced actions. Figures go to artifacts/fleet.txt.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test: skipped in -short mode only")
	}
	const (
		nHosts   = 20
		perHost  = 1000
		total    = nHosts * perHost
		minKills = 5
		// Clients per host, one request at a time each: the host commits
		// the enqueues arriving together at once.
		clientsPerHost = 4
	)
	loadBefore := loadavg()
	dsn := pgtest.DB(t)
	token := testsupport.NewKey()
	tokFile, dsnFile := writeSecret(t, "upstream-token", token), writeSecret(t, "dsn", dsn)
	upLog := logFile(t, "upstreams.log")
	var ups [2]*upstreamProc
	for i := range ups {
		ups[i] = startUpstreamProc(t, upLog, testsupport.FreeAddr(t), "--db-file", dsnFile, "--token-file", tokFile, "--db-pool", "4")
	}
	hostLog := logFile(t, "hosts.log")
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []*os.File{hostLog, upLog} {
				t.Logf("last lines of %s:\n%s", filepath.Base(f.Name()), tail(f.Name(), 40))
			}
		}
	})
	logger := slog.New(slog.NewTextHandler(hostLog, &slog.HandlerOptions{Level: slog.LevelWarn}))

	hosts := make([]*fleetHost, nHosts)
	for i := range hosts {
		fh := &fleetHost{i: i, dir: t.TempDir(), up: i % 2, log: logger.With("host", i)}
		fh.upURL = ups[fh.up].url()
		fh.start(t, token)
		t.Cleanup(func() { fh.stop(t) })
		hosts[i] = fh
	}
	if t.Failed() {
		t.FailNow()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	start := time.Now()
	// Each host's keys by outbox id: its enqueue order, which its engine
	// keeps (FIFO by id).
	acked := make([]map[int64]string, nHosts)
	var retries, switches atomic.Int64
	var clients, switching sync.WaitGroup
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, fh := range hosts {
		// Hosts 0, 1, 4, 5, … switch: half of each instance's.
		switchAt := int64(-1)
		if fh.i/2%2 == 0 {
			switchAt = perHost / 2
		}
		acked[fh.i] = make(map[int64]string, perHost)
		var ackMu sync.Mutex
		var next atomic.Int64
		for range clientsPerHost {
			clients.Go(func() {
				for ctx.Err() == nil {
					j := next.Add(1) - 1
					if j >= perHost {
						return
					}
					if j == switchAt {
						switching.Go(func() {
							fh.stop(t)
							fh.mu.Lock()
							fh.up = 1 - fh.up
							fh.upURL = ups[fh.up].url()
							fh.mu.Unlock()
							fh.start(t, token)
							switches.Add(1)
						})
					}
					key := testsupport.NewKey()
					for ctx.Err() == nil {
						if id, ok := fh.enqueue(ctx, hc, key, fmt.Sprintf(`{"host":%d,"n":%d}`, fh.i, j)); ok {
							ackMu.Lock()
							acked[fh.i][id] = key
							ackMu.Unlock()
							break
						}
						retries.Add(1)
						time.Sleep(10 * time.Millisecond)
					}
				}
			})
		}
	}
	enqueued := make(chan struct{})
	go func() { clients.Wait(); close(enqueued) }()

	// Kill instance 0 at random moments until the clients are done and
	// it has died at least minKills times; each time it comes back on
	// its port.
	kills := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for kills < minKills || !isClosed(enqueued) {
		if ctx.Err() != nil {
			t.Fatalf("timed out after %d kills", kills)
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		ups[0].kill()
		kills++
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // down for a moment
		ups[0].start(t)
	}
	<-enqueued
	switching.Wait()
	enqueueTime := time.Since(start)
	t.Logf("enqueued in %v, %d kills", enqueueTime, kills)

	// Wait until every outbox is drained and every host has announced
	// every action.
	for {
		if ctx.Err() != nil {
			for _, fh := range hosts {
				st, _ := fh.status(context.Background())
				fh.recvMu.Lock()
				dropped := fh.dropped
				fh.recvMu.Unlock()
				t.Logf("host %d: counts %v, state %s, received %d of %d (subscription dropped: %v)", fh.i, st.Counts, st.State, fh.receivedCount(), total, dropped)
			}
			t.Error("timed out waiting for the outboxes to drain and every host to see every action")
			break
		}
		settled := true
		for _, fh := range hosts {
			st, ok := fh.status(ctx)
			fh.recvMu.Lock()
			dropped := fh.dropped
			fh.recvMu.Unlock()
			if dropped {
				t.Fatalf("host %d: the test's subscription to its hub fell behind and was dropped: it cannot count what the host announced", fh.i)
			}
			if !ok || st.Counts["synced"] != perHost || st.Counts["queued"]+st.Counts["syncing"]+st.Counts["failed"] != 0 ||
				fh.receivedCount() < total {
				settled = false
				break
			}
		}
		if settled {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if n := switches.Load(); n != nHosts/2 {
		t.Errorf("%d hosts switched instances, want %d", n, nHosts/2)
	}

	// The database: every acknowledged key applied exactly once.
	store, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	applied, err := store.AppliedKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	integrity := "ok"
	if err := store.IntegrityCheck(context.Background()); err != nil {
		integrity = err.Error()
		t.Errorf("upstream integrity: %v", err)
	}
	stats, _ := store.Stats(context.Background())
	owner := map[string][2]int{} // key → host, position in its enqueue order
	nAcked := 0
	for i, byID := range acked {
		nAcked += len(byID)
		if len(byID) != perHost {
			t.Errorf("host %d acknowledged %d actions, want %d", i, len(byID), perHost)
		}
		ids := slices.Sorted(maps.Keys(byID))
		for j, id := range ids {
			owner[byID[id]] = [2]int{i, j}
		}
	}
	counts := map[string]int{}
	for _, k := range applied {
		counts[k]++
	}
	var dups, strangers, missing int
	for k, n := range counts {
		if n > 1 {
			dups++
		}
		if _, ok := owner[k]; !ok {
			strangers++
		}
	}
	for k := range owner {
		if counts[k] == 0 {
			missing++
		}
	}
	if dups+strangers+missing > 0 || len(applied) != total {
		t.Errorf("the database holds %d applied keys (want %d): %d applied more than once, %d never acknowledged, %d acknowledged but missing",
			len(applied), total, dups, strangers, missing)
	}

	// Each host's actions are in the event log (cursor order) in its
	// enqueue order.
	orderOK := 0
	next := make([]int, nHosts)
	outOfOrder := make([]bool, nHosts)
	for _, k := range applied {
		o, ok := owner[k]
		if !ok {
			continue
		}
		if o[1] != next[o[0]] {
			outOfOrder[o[0]] = true
		}
		next[o[0]] = o[1] + 1
	}
	for i := range hosts {
		if outOfOrder[i] {
			t.Errorf("host %d: its actions are not in the event log in its enqueue order", i)
		} else {
			orderOK++
		}
	}

	// Each host announced every action exactly once, in cursor order,
	// so each sender's actions in its enqueue order.
	feedsOK := 0
	for _, fh := range hosts {
		fh.recvMu.Lock()
		got, cursors, dropped := slices.Clone(fh.received), slices.Clone(fh.cursors), fh.dropped
		fh.recvMu.Unlock()
		if dropped {
			t.Errorf("host %d: the test's hub subscription fell behind and was dropped: its count is incomplete", fh.i)
			continue
		}
		seen := make(map[string]int, len(got))
		for _, k := range got {
			seen[k]++
		}
		twice, absent := 0, 0
		for _, n := range seen {
			if n > 1 {
				twice++
			}
		}
		for k := range owner {
			if seen[k] == 0 {
				absent++
			}
		}
		sorted := slices.IsSorted(cursors) && len(slices.Compact(slices.Clone(cursors))) == len(cursors)
		if twice+absent > 0 || len(got) != total || !sorted {
			t.Errorf("host %d announced %d messages (want %d): %d more than once, %d never; in cursor order: %v",
				fh.i, len(got), total, twice, absent, sorted)
		} else {
			feedsOK++
		}
	}

	// Both instances stop cleanly on SIGTERM.
	for _, u := range ups {
		u.stop(t)
	}

	loadAfter := loadavg()
	figures := fmt.Sprintf(`fleet test: 2 'synctray upstream' instances on one PostgreSQL database, %d local hosts in process (over loopback HTTP)
actions: %d (%d per host, %d clients per host each posting one POST /api/actions at a time), %d acknowledged, %d client retries
failures: %d SIGKILLs of instance 0 (restarted on its port), %d hosts restarted on their data dir pinned to the other instance
enqueue: %v (%.0f actions/s acknowledged across the fleet)
drained and delivered: %v after the start (%.0f actions/s end to end; %d messages announced by the hosts, %.0f/s)
database: %d applied keys, %d duplicates answered (resends after kills and restarts), %d rejected; integrity check: %v
exactly once: %d applied more than once, %d acknowledged but missing, %d never acknowledged
per-host order in the event log: %d of %d hosts in enqueue order
per-host feeds: %d of %d hosts announced all %d actions exactly once, in cursor order
load average (1, 5, 15 min): %s before, %s after
`, nHosts, total, perHost, clientsPerHost, nAcked, retries.Load(), kills, switches.Load(),
		enqueueTime.Round(time.Millisecond), float64(nAcked)/enqueueTime.Seconds(),
		elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), total*nHosts, float64(total*nHosts)/elapsed.Seconds(),
		len(applied), stats.Duplicates, stats.Rejected, integrity,
		dups, missing, strangers, orderOK, nHosts, feedsOK, nHosts, total, loadBefore, loadAfter)
	t.Log(figures)
	writeArtifact(t, "fleet.txt", figures)
}

// loadavg returns the first three fields of /proc/loadavg, or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
