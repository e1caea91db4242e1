package traytest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
)

const bigOutbox = 100000

var (
	prefillOnce sync.Once
	prefillDir  string
	prefillErr  error
)

// prefilled returns a data dir whose outbox holds 100,000 queued actions,
// made once per test binary with outboxdb.EnqueueBatch.
func prefilled(b testing.TB) string {
	b.Helper()
	prefillOnce.Do(func() {
		prefillDir, prefillErr = os.MkdirTemp("", "synctray-bench")
		if prefillErr != nil {
			return
		}
		start := time.Now()
		db, err := outboxdb.Open(filepath.Join(prefillDir, "outbox.db"), outboxdb.Options{})
		if err != nil {
			prefillErr = err
			return
		}
		defer db.Close()
		ctx := context.Background()
		for i := 0; i < bigOutbox; i += 1000 {
			batch := make([]outbox.NewAction, 1000)
			for j := range batch {
				p, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("message %d", i+j)})
				batch[j] = outbox.NewAction{Key: testsupport.NewKey(), Type: "message", Payload: p}
			}
			if _, err := db.EnqueueBatch(ctx, batch); err != nil {
				prefillErr = err
				return
			}
		}
		fmt.Fprintf(os.Stderr, "prefilled %d actions in %v\n", bigOutbox, time.Since(start).Round(time.Millisecond))
	})
	if prefillErr != nil {
		b.Fatalf("prefill the outbox: %v", prefillErr)
	}
	return prefillDir
}

// rssMB is the resident memory of a process, from /proc/PID/status.
func rssMB(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatalf("VmRSS %q: %v", rest, err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkTrayIdleMemory measures the resident memory of the running
// tray app (tray icon up, under Xvfb and a session bus) with a
// 100,000-action outbox, idle, then with the inspector window open.
// Target: ≤ 80 MB idle.
func BenchmarkTrayIdleMemory(b *testing.B) {
	dir := prefilled(b)
	disp := display(b)
	bus := sessionBus(b)
	w := newWatcher(b, bus)
	var idle, window float64
	for i := 0; i < b.N; i++ {
		p := start(b, env(b.TempDir(), disp, bus), dir, testsupport.FreeAddr(b), "--work-offline")
		p.waitHealthy(b)
		w.item(b)
		time.Sleep(3 * time.Second) // settle: GC, lazy page-ins
		idle = rssMB(b, p.cmd.Process.Pid)
		b.Logf("idle: %.1f MB: %s", idle, rssBreakdown(p.cmd.Process.Pid))
		if code := p.api(b, "POST", "/api/ui/show", nil, nil); code != 200 {
			b.Fatalf("show the window: %d", code)
		}
		time.Sleep(2 * time.Second)
		window = rssMB(b, p.cmd.Process.Pid)
		b.Logf("window: %.1f MB: %s", window, rssBreakdown(p.cmd.Process.Pid))
		if st := p.status(b); st.Counts["queued"] != bigOutbox {
			b.Fatalf("counts %v, want %d queued", st.Counts, bigOutbox)
		}
		p.stop(b)
	}
	b.ReportMetric(idle, "MB-RSS-idle")
	b.ReportMetric(window, "MB-RSS-window")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTrayStartup measures the time from exec to the host answering
// /healthz, for the tray app under Xvfb with a session bus. Target: ≤ 500 ms.
func BenchmarkTrayStartup(b *testing.B) {
	disp := display(b)
	bus := sessionBus(b)
	newWatcher(b, bus)
	for _, tc := range []struct {
		name string
		dir  func() string
	}{
		{"outbox=empty", func() string { return b.TempDir() }},
		{fmt.Sprintf("outbox=%d", bigOutbox), func() string { return prefilled(b) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := tc.dir()
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				environ, addr := env(b.TempDir(), disp, bus), testsupport.FreeAddr(b)
				b.StartTimer()
				t0 := time.Now()
				p := start(b, environ, dir, addr, "--work-offline")
				p.waitHealthy(b)
				total += time.Since(t0)
				b.StopTimer()
				p.stop(b)
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-healthz")
		})
	}
}

// rssBreakdown names the mappings that hold the most resident memory.
func rssBreakdown(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return err.Error()
	}
	rss := map[string]int{}
	name := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			name = "[anon]"
			if len(f) >= 6 {
				name = filepath.Base(f[5])
			}
		case len(f) >= 2 && f[0] == "Rss:":
			kb, _ := strconv.Atoi(f[1])
			rss[name] += kb
		}
	}
	type kv struct {
		name string
		kb   int
	}
	var top []kv
	for n, kb := range rss {
		top = append(top, kv{n, kb})
	}
	slices.SortFunc(top, func(a, b kv) int { return b.kb - a.kb })
	var out []string
	for _, e := range top[:min(6, len(top))] {
		out = append(out, fmt.Sprintf("%s %.1f MB", e.name, float64(e.kb)/1024))
	}
	return strings.Join(out, ", ")
}
