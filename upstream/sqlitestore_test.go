package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "upstream.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func act(key, typ, payload string) Action {
	return Action{Key: key, Type: typ, Payload: json.RawMessage(payload), CreatedAt: time.Now()}
}

func statuses(rs []Result) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", r.Key, r.Status)
		if r.Error != "" {
			fmt.Fprintf(&b, "(%s)", r.Error)
		}
	}
	return b.String()
}

func TestApplySemantics(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)

	big := `{"x":"` + strings.Repeat("a", MaxPayloadBytes) + `"}`
	res, err := s.Apply(ctx, []Action{
		act("a", "note", `{ "n" : 1 }`),
		act("b", "note", `{"n":2}`),
		act("a", "note", `{"n":3}`), // repeated within the batch
		act("c", "", `{}`),
		act("d", "note", `{nope`),
		act("e", "note", big),
		act("f", "note", `{"_reject":"no thanks"}`),
		act("g", "note", `{"_reject":5}`), // not a string: applied
		act("", "note", `{}`),
		{Key: "h", Type: "note"}, // no payload
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "a=applied b=applied a=duplicate c=rejected(empty type) d=rejected(payload is not valid JSON) " +
		fmt.Sprintf("e=rejected(payload larger than %d bytes) ", MaxPayloadBytes) +
		"f=rejected(no thanks) g=applied =rejected(empty key) h=rejected(payload is not valid JSON)"
	if got := statuses(res); got != want {
		t.Fatalf("results:\n got %s\nwant %s", got, want)
	}

	// Resending: applied keys are duplicates, rejected keys stay rejected
	// with the same error even with a now-valid action.
	res, err = s.Apply(ctx, []Action{
		act("a", "note", `{}`),
		act("f", "note", `{"ok":true}`),
		act("c", "note", `{}`),
		act("i", "note", `[1, 2]`),
	})
	if err != nil {
		t.Fatal(err)
	}
	want = "a=duplicate f=rejected(no thanks) c=rejected(empty type) i=applied"
	if got := statuses(res); got != want {
		t.Fatalf("resend results:\n got %s\nwant %s", got, want)
	}

	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Applied: 4, Duplicates: 2, Rejected: 8}); st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
	keys, err := s.AppliedKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys, ","); got != "a,b,g,i" {
		t.Fatalf("applied keys = %s", got)
	}
	evs, err := s.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 || string(evs[0].Payload) != `{"n":1}` || string(evs[3].Payload) != `[1,2]` {
		t.Fatalf("events = %+v", evs)
	}
	if evs[0].AppliedAt.IsZero() || evs[0].AppliedAt.Location() != time.UTC {
		t.Fatalf("applied_at = %v", evs[0].AppliedAt)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStoreEventsPaging(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	for i := range 5 {
		if _, err := s.Apply(ctx, []Action{act(fmt.Sprint("k", i), "t", `{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	var after int64
	for {
		evs, err := s.Events(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Cursor <= after {
				t.Fatalf("cursor %d after %d", e.Cursor, after)
			}
			after = e.Cursor
			keys = append(keys, e.Key)
		}
	}
	if got := strings.Join(keys, ","); got != "k0,k1,k2,k3,k4" {
		t.Fatalf("keys = %s", got)
	}
}

func TestStoreReopenPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "up.db")
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, []Action{act("a", "t", `{}`), act("a", "t", `{}`), act("b", "", `{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Applied: 1, Duplicates: 1, Rejected: 1}); st != want {
		t.Fatalf("stats after reopen = %+v, want %+v", st, want)
	}
	res, err := s.Apply(ctx, []Action{act("a", "t", `{}`), act("c", "t", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "a=duplicate c=applied" {
		t.Fatalf("after reopen: %s", got)
	}
	var mode string
	if err := s.r.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentApplyExactlyOnce(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	const workers, keys = 16, 60
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			perm := r.Perm(keys)
			for len(perm) > 0 {
				n := min(len(perm), 1+r.IntN(10))
				batch := make([]Action, n)
				for i, k := range perm[:n] {
					batch[i] = act(fmt.Sprintf("key-%03d", k), "t", fmt.Sprintf(`{"w":%d}`, w))
				}
				perm = perm[n:]
				if _, err := s.Apply(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.AppliedKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range got {
		if seen[k] {
			t.Fatalf("key %s applied twice", k)
		}
		seen[k] = true
	}
	if len(seen) != keys {
		t.Fatalf("%d keys applied, want %d", len(seen), keys)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Applied: keys, Duplicates: (workers - 1) * keys}); st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
}

func TestSubscriptionDroppedWhenFull(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	slow := s.subscribe(2)
	fast := s.subscribe(10)
	defer s.unsubscribe(fast)
	if _, err := s.Apply(ctx, []Action{act("a", "t", `1`), act("b", "t", `2`), act("c", "t", `3`)}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for e := range slow.ch {
		got = append(got, e.Key)
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("slow subscriber got %v before being dropped", got)
	}
	s.unsubscribe(slow) // no-op after a drop
	for _, want := range []string{"a", "b", "c"} {
		if e := <-fast.ch; e.Key != want {
			t.Fatalf("fast subscriber got %s, want %s", e.Key, want)
		}
	}
}
