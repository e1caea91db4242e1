package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport/pgtest"
	"synctray/upstream"
	"synctray/upstream/pgstore"
)

// upstreamStores runs test once with the upstream's store in SQLite (in
// dir) and once in PostgreSQL: args are the flags that choose it, applied
// returns the keys the store holds once the upstream has stopped.
func upstreamStores(t *testing.T, test func(t *testing.T, args []string, applied func() []string)) {
	t.Setenv("SYNCTRAY_DB", "")
	os.Unsetenv("SYNCTRAY_DB")
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		test(t, []string{"--data-dir", dir}, func() []string {
			s, err := upstream.OpenStore(filepath.Join(dir, "upstream.db"))
			return appliedKeys(t, s, err)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DB(t)
		test(t, []string{"--data-dir", t.TempDir(), "--db-file", writeFile(t, "dsn", dsn)}, func() []string {
			s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
			return appliedKeys(t, s, err)
		})
	})
}

// appliedKeys returns the keys in s, just opened (with err), and closes it.
func appliedKeys(t *testing.T, s upstream.Store, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, err := s.AppliedKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

type sent struct {
	res []upstream.Result
	err error
}

// sendSlowBatch sends one action with key through the upstream at base in
// the background.
func sendSlowBatch(base, key string) <-chan sent {
	ch := make(chan sent, 1)
	go func() {
		c := &upstream.Client{BaseURL: base, Token: "t0ken", HTTP: &http.Client{Timeout: time.Minute}}
		res, err := c.Send(context.Background(), []upstream.Action{{Key: key, Type: "note", Payload: json.RawMessage(`{}`)}})
		ch <- sent{res, err}
	}()
	return ch
}

// refused waits until nothing accepts connections at base's address.
func refused(t *testing.T, base string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the upstream still accepts connections 10s after it was told to stop")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTheUpstreamAnswersTheBatchInFlightWhenItStops(t *testing.T) {
	upstreamStores(t, func(t *testing.T, args []string, applied func() []string) {
		tok := writeFile(t, "tok", "t0ken")
		// Each batch waits 3s before it is applied: the stop comes in
		// the middle of it.
		base, logs, stop := runUpstreamCLI(t, append(args, "--token-file", tok, "--latency", "3s")...)
		answer := sendSlowBatch(base, "slow-1")
		time.Sleep(500 * time.Millisecond)
		exit := make(chan int, 1)
		go func() { exit <- stop() }()
		refused(t, base) // it stops accepting at once…
		select {
		case a := <-answer:
			t.Fatalf("the batch was answered before its latency was over: %+v", a)
		default:
		}
		a := <-answer // …and still answers the batch it had
		if a.err != nil || len(a.res) != 1 || a.res[0].Status != upstream.StatusApplied {
			t.Fatalf("the batch in flight got %+v, %v; want it applied", a.res, a.err)
		}
		if code := <-exit; code != 0 {
			t.Fatalf("exit %d:\n%s", code, logs.String())
		}
		if keys := applied(); !slices.Equal(keys, []string{"slow-1"}) {
			t.Fatalf("the store holds %v, want [slow-1]", keys)
		}
	})
}

func TestTheUpstreamCutsABatchThatOutlastsTheShutdownTimeout(t *testing.T) {
	upstreamStores(t, func(t *testing.T, args []string, applied func() []string) {
		tok := writeFile(t, "tok", "t0ken")
		base, logs, stop := runUpstreamCLI(t, append(args, "--token-file", tok, "--latency", "1m", "--shutdown-timeout", "300ms")...)
		answer := sendSlowBatch(base, "too-slow")
		time.Sleep(300 * time.Millisecond)
		if code := stop(); code != 0 {
			t.Fatalf("exit %d:\n%s", code, logs.String())
		}
		if a := <-answer; a.err == nil {
			t.Fatalf("the cut batch got an answer: %+v", a.res)
		}
		if !strings.Contains(logs.String(), "cutting their connections") {
			t.Errorf("log:\n%s\nwant a warning that requests were cut", logs.String())
		}
		if keys := applied(); len(keys) != 0 {
			t.Fatalf("the store holds %v: a cut batch must not be applied", keys)
		}
	})
}
