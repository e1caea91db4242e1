package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/testsupport"
)

// startLimited runs the synctray binary with its file limit (soft and
// hard, so the Go runtime cannot raise it) set to nofile.
func startLimited(t testing.TB, logf *os.File, nofile int, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), binary}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start synctray: %v", err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	return p
}

// openFileLimit reads the soft limit on open files of a running process.
func openFileLimit(t testing.TB, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			return strings.Fields(strings.TrimPrefix(line, "Max open files"))[0]
		}
	}
	t.Fatalf("no open files limit in /proc/%d/limits:\n%s", pid, b)
	return ""
}

// slowClient sends head, then one byte of trickle every 200 ms, for
// ever. When the host closes the connection it connects again and starts
// over, as a determined attacker would.
func slowClient(ctx context.Context, addr, head, trickle string, connected *atomic.Int64) {
	first := true
	for ctx.Err() == nil {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if _, err := io.WriteString(c, head); err == nil && first {
			connected.Add(1)
			first = false
		}
		closed := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(closed) }()
		tick := time.NewTicker(200 * time.Millisecond)
	trickling:
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				break trickling
			case <-closed:
				break trickling
			case <-tick.C:
				if _, err := io.WriteString(c, trickle[i%len(trickle):i%len(trickle)+1]); err != nil {
					break trickling
				}
			}
		}
		tick.Stop()
		c.Close()
		<-closed
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// slowCases are the two ways a slow client holds a connection.
var slowCases = []struct {
	name, head, trickle string
}{
	{"unauthenticated POSTs trickling a 200 KB body",
		"POST /api/actions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n",
		`{"type":"message","payload":"xxxxxxxx`},
	{"clients trickling their request headers",
		"GET /healthz HTTP/1.1\r\nHost: %s\r\n",
		"X-Slow: 1\r\n"},
}

const slowClients, slowNofile = 1100, 1024

// slowStorm is the real binary under a 1,024-file limit with clients
// slow clients connected to it; they stop when the test ends.
type slowStorm struct {
	base, token string
	p           *proc
	hc          *http.Client
}

func startSlowStorm(t testing.TB, head, trickle string, clients int) *slowStorm {
	t.Helper()
	dir := t.TempDir()
	addr := testsupport.FreeAddr(t)
	base := "http://" + addr
	logf := hostLog(t)
	p := startLimited(t, logf, slowNofile, "serve", "--data-dir", dir, "--addr", addr, "--work-offline", "--log-level", "warn")
	waitHealthy(t, base, p)
	token := readToken(t, dir)
	if got := openFileLimit(t, p.cmd.Process.Pid); got != fmt.Sprint(slowNofile) {
		t.Fatalf("the host's open files limit is %s, want %d", got, slowNofile)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var connected atomic.Int64
	head = fmt.Sprintf(head, addr)
	for range clients {
		wg.Go(func() { slowClient(ctx, addr, head, trickle, &connected) })
	}
	waitUntil := time.Now().Add(30 * time.Second)
	for connected.Load() < int64(clients) {
		if time.Now().After(waitUntil) {
			t.Fatalf("only %d of %d slow clients connected", connected.Load(), clients)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the host take them all in
	t.Cleanup(func() {
		if t.Failed() {
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)); err == nil {
				t.Logf("the host holds %d open files", len(fds))
			}
			if out, err := exec.Command("ss", "-ltn", "sport = :"+addr[strings.LastIndexByte(addr, ':')+1:]).CombinedOutput(); err == nil {
				t.Logf("listener:\n%s", out)
			}
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("host log (last 2 KiB):\n%s", b[max(0, len(b)-6000):])
			}
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return &slowStorm{base: base, token: token, p: p, hc: hc}
}

// healthz asks /healthz. It is unauthenticated, so its connection counts
// among the untrusted ones the host may shed when they pass their cap: a
// monitor retries, a few tries at most. It returns the tries it took.
func (s *slowStorm) healthz(t testing.TB) int {
	t.Helper()
	for try := 1; ; try++ {
		resp, err := s.hc.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("/healthz = %d, want 200", resp.StatusCode)
			}
			return try
		}
		if try == 3 {
			t.Fatalf("/healthz under %d slow clients, %d tries: %v", slowClients, try, err)
		}
	}
}

// enqueue sends an authenticated write. A client resends a write whose
// connection was cut, with the same key (that is what the key is for); a
// few tries at most. It returns the tries it took.
func (s *slowStorm) enqueue(t testing.TB) int {
	t.Helper()
	key := testsupport.NewKey()
	for try := 1; ; try++ {
		req, _ := http.NewRequest("POST", s.base+"/api/actions", strings.NewReader(`{"type":"message","payload":{"text":"still here"}}`))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Idempotency-Key", key)
		resp, err := s.hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 202 {
				t.Fatalf("enqueue = %d, want 202", resp.StatusCode)
			}
			return try
		}
		if try == 3 {
			t.Fatalf("enqueue under %d slow clients, %d tries: %v", slowClients, try, err)
		}
	}
}

// TestSlowClientsDoNotStarveTheHost points 1,100 slow clients at the real
// binary running under a 1,024-file limit, and checks that /healthz and an
// authenticated enqueue still answer. The 5 s client timeout is a failure
// bound, not a speed claim: without the fixes they never answer. How fast
// they answer is BenchmarkUnderSlowClients's (the 100 ms).
func TestSlowClientsDoNotStarveTheHost(t *testing.T) {
	for _, c := range slowCases {
		t.Run(c.name, func(t *testing.T) {
			s := startSlowStorm(t, c.head, c.trickle, slowClients)
			for round := range 3 {
				start := time.Now()
				tries := s.healthz(t)
				t.Logf("round %d: /healthz answered in %v (try %d)", round, time.Since(start).Round(time.Millisecond), tries)
				if tries := s.enqueue(t); tries > 1 {
					t.Logf("round %d: enqueue answered on try %d", round, tries)
				}
				if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.p.cmd.Process.Pid)); err == nil {
					t.Logf("round %d: the host holds %d open files", round, len(fds))
				}
				time.Sleep(300 * time.Millisecond)
			}
		})
	}
}

// BenchmarkUnderSlowClients times /healthz and an authenticated enqueue
// (each with its retries, as a client sees it) while 1,100 slow clients
// hold the host under a 1,024-file limit; issue 7 asks for 100 ms. The
// baseline is the same requests with no slow client.
func BenchmarkUnderSlowClients(b *testing.B) {
	run := func(b *testing.B, s *slowStorm) {
		var health, enq []time.Duration
		retries := 0
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			retries += s.healthz(b) - 1
			mid := time.Now()
			retries += s.enqueue(b) - 1
			health, enq = append(health, mid.Sub(start)), append(enq, time.Since(mid))
		}
		b.StopTimer()
		for _, m := range []struct {
			name string
			d    []time.Duration
		}{{"healthz", health}, {"enqueue", enq}} {
			slices.Sort(m.d)
			b.ReportMetric(ms(m.d[len(m.d)/2]), m.name+"-p50-ms")
			b.ReportMetric(ms(m.d[len(m.d)*99/100]), m.name+"-p99-ms")
			b.ReportMetric(ms(m.d[len(m.d)-1]), m.name+"-max-ms")
		}
		b.ReportMetric(float64(retries), "retries")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("no slow clients", func(b *testing.B) { run(b, startSlowStorm(b, "", "", 0)) })
	for _, c := range slowCases {
		b.Run(c.name, func(b *testing.B) { run(b, startSlowStorm(b, c.head, c.trickle, slowClients)) })
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
