package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/upstream"
)

// exportHost runs a host (working offline: nothing is sent) whose outbox
// holds n actions with payloads of about payloadBytes, enqueued straight
// through the store in batches of 1,000.
func exportHost(t *testing.T, n, payloadBytes int) (dataDir, addr string) {
	t.Helper()
	_, _, upURL := testupstream.Start(t, upstream.Options{})
	dataDir = t.TempDir()
	h, err := localserver.Open(localserver.Config{DataDir: dataDir, Addr: "127.0.0.1:0", UpstreamURL: upURL,
		WorkOffline: true, Logger: testsupport.Logger(t)})
	if err != nil {
		t.Fatalf("open host: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("host Run: %v", err)
		}
	})
	filler := strings.Repeat("x", payloadBytes)
	batch := make([]outbox.NewAction, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, outbox.NewAction{Key: testsupport.NewKey(), Type: "message",
			Payload: json.RawMessage(fmt.Sprintf(`{"text":"note %d","pad":%q}`, i, filler))})
		if len(batch) == cap(batch) || i == n-1 {
			res, err := h.Outbox().EnqueueBatch(ctx, batch)
			if err != nil {
				t.Fatalf("enqueue: %v", err)
			}
			for _, r := range res {
				if r.Err != nil || !r.Created {
					t.Fatalf("enqueue: %+v", r)
				}
			}
			batch = batch[:0]
		}
	}
	return dataDir, strings.TrimPrefix(h.URL(), "http://")
}

// heapWatcher is the export's stdout: it counts lines and bytes, keeps the
// first few lines, and reads the heap every 5,000 lines, noting the most
// in use. The host and the CLI share this process, so it measures both.
type heapWatcher struct {
	lines, bytes int
	head         bytes.Buffer
	peak         uint64
}

func (w *heapWatcher) Write(p []byte) (int, error) {
	for _, c := range p {
		if c != '\n' {
			continue
		}
		w.lines++
		if w.lines%5000 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			w.peak = max(w.peak, ms.HeapInuse)
		}
	}
	if w.head.Len() < 64<<10 {
		w.head.Write(p[:min(len(p), 64<<10)])
	}
	w.bytes += len(p)
	return len(p), nil
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestOutboxExport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an outbox of 100,000 actions")
	}
	const n, payload = 100_000, 1000
	dataDir, addr := exportHost(t, n, payload)
	// What the export must not hold: 100,000 rows of more than 1 KB each.
	const heapLimit = 32 << 20

	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format+" streams every action with bounded memory", func(t *testing.T) {
			base := heapInuse()
			var out heapWatcher
			var errOut bytes.Buffer
			code := Main(context.Background(), []string{"outbox", "export", "--format", format, "--data-dir", dataDir, "--addr", addr}, &out, &errOut)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			want := n
			if format == "csv" {
				want = n + 1 // the header
			}
			if out.lines != want {
				t.Fatalf("%d lines, want %d", out.lines, want)
			}
			growth := int64(out.peak) - int64(base)
			t.Logf("%s: %d lines, %.1f MB written; heap in use %.1f MB before, at most %.1f MB during (sampled every 5,000 lines)",
				format, out.lines, float64(out.bytes)/(1<<20), float64(base)/(1<<20), float64(out.peak)/(1<<20))
			if growth > heapLimit {
				t.Fatalf("heap grew by %.1f MB during the export, more than %d MB: rows are being held", float64(growth)/(1<<20), heapLimit>>20)
			}
			switch format {
			case "jsonl":
				first, _, _ := strings.Cut(out.head.String(), "\n")
				var l localserver.ExportLine
				if err := json.Unmarshal([]byte(first), &l); err != nil || l.ID != 1 || len(l.History) != 1 || l.Summary != "note 0" {
					t.Fatalf("first line %.200q (%v), want action 1 with its history and summary", first, err)
				}
			case "csv":
				rd := csv.NewReader(strings.NewReader(out.head.String()))
				header, err := rd.Read()
				if err != nil || strings.Join(header, ",") != "id,key,type,state,attempts,created_at,updated_at,synced_at,last_error,summary,history" {
					t.Fatalf("header %q (%v)", header, err)
				}
				row, err := rd.Read()
				if err != nil || row[0] != "1" || row[3] != "queued" || row[9] != "note 0" {
					t.Fatalf("first row %q (%v)", row, err)
				}
				if _, err := time.Parse(time.RFC3339Nano, row[5]); err != nil {
					t.Fatalf("created_at %q: %v", row[5], err)
				}
				var history []outbox.Change
				if err := json.Unmarshal([]byte(row[10]), &history); err != nil || len(history) != 1 || history[0].From != "" || history[0].To != outbox.Queued {
					t.Fatalf("history %q (%v), want the one change (new) → queued as JSON", row[10], err)
				}
			}
		})
	}
}

func TestOutboxExportFilters(t *testing.T) {
	dataDir, addr := exportHost(t, 3, 10)
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"outbox", "export", "--data-dir", dataDir, "--addr", addr}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	t.Run("--state and --since select actions", func(t *testing.T) {
		if code, out, errOut := run("--state", "failed"); code != 0 || out != "" {
			t.Fatalf("--state failed: exit %d, %q %s; want no lines", code, out, errOut)
		}
		if code, out, errOut := run("--since", "1h", "--state", "queued"); code != 0 || strings.Count(out, "\n") != 3 {
			t.Fatalf("--since 1h: exit %d, %q %s; want 3 lines", code, out, errOut)
		}
		if code, out, errOut := run("--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); code != 0 || out != "" {
			t.Fatalf("--since in an hour: exit %d, %q %s; want no lines", code, out, errOut)
		}
	})
	t.Run("bad values are refused with the reason", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--format", "xml"}, `--format "xml": want jsonl or csv`},
			{[]string{"--since", "yesterday"}, `--since "yesterday"`},
			{[]string{"--state", "lost"}, `--state "lost"`},
		} {
			if code, _, errOut := run(c.args...); code == 0 || !strings.Contains(errOut, c.want) {
				t.Errorf("%v: exit %d, %q; want an error with %q", c.args, code, errOut, c.want)
			}
		}
	})
}
