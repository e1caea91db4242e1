// Package storetest is the contract of upstream.Store: one suite of tests
// that every implementation (SQLite, PostgreSQL) runs and passes. Only
// tests import it.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/upstream"
)

// DB is one empty database made for one test.
type DB struct {
	// Open opens a Store on the database; it may be called again after
	// the previous store closed (a restart) and, when Shared, while it is
	// open (another instance).
	Open func() (upstream.Store, error)
	// Shared says that stores opened at once on the database act as
	// instances of one upstream: each applies every key once among them
	// all and streams the events of all.
	Shared bool
	// BumpSchema records, while no store is open, a schema version one
	// above the newest this program knows. nil skips that test.
	BumpSchema func() error
}

// Run runs the suite; fresh makes a new, empty database for each test.
func Run(t *testing.T, fresh func(t *testing.T) DB) {
	for _, tc := range []struct {
		name   string
		shared bool
		test   func(*testing.T, *harness)
	}{
		{"applies new keys once, tells duplicates within and across batches, and rejects invalid actions", false, testApplySemantics},
		{"an empty batch applies nothing", false, testEmptyBatch},
		{"a rejected key keeps its original error when sent again", false, testRejectionIsFinal},
		{"events page by cursor, in batch order, with the default and the largest limit", false, testEventsPaging},
		{"keys, events and counters survive a restart", false, testReopen},
		{"many goroutines sending overlapping keys apply each key once, with gap-free cursors", false, testConcurrentExactlyOnce},
		{"a subscriber gets committed events in cursor order", false, testSubscribeInOrder},
		{"a subscriber that falls behind is closed, the others go on", false, testSlowSubscriberDropped},
		{"cancelling a subscription closes it, and cancelling again is harmless", false, testCancel},
		{"Close closes every subscription", false, testCloseClosesSubscriptions},
		{"a database of a newer schema is refused", false, testNewerSchema},
		{"Ping answers while the store is open and fails once it is closed", false, testPing},
		{"instances: keys sent to two instances at once are applied once", true, testInstancesExactlyOnce},
		{"instances: a reader of events never skips one committed late while two instances commit", true, testInstancesGapFreeCursor},
		{"instances: a subscriber on one instance gets the events applied on another, in order", true, testInstancesSubscribe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := fresh(t)
			if tc.shared && !db.Shared {
				testsupport.Skip(t, "the store has one instance per database")
			}
			tc.test(t, &harness{db: db})
		})
	}
}

type harness struct{ db DB }

// open opens a store on the test's database, closed when the test ends.
func (h *harness) open(t *testing.T) upstream.Store {
	t.Helper()
	s, err := h.db.Open()
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Act returns an action made now.
func Act(key, typ, payload string) upstream.Action {
	return upstream.Action{Key: key, Type: typ, Payload: json.RawMessage(payload), CreatedAt: time.Now()}
}

// Statuses renders results as "key=status(error) …".
func Statuses(rs []upstream.Result) string {
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

func mustApply(t *testing.T, s upstream.Store, actions ...upstream.Action) []upstream.Result {
	t.Helper()
	res, err := s.Apply(context.Background(), actions)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(res) != len(actions) {
		t.Fatalf("%d results for %d actions", len(res), len(actions))
	}
	return res
}

func mustStats(t *testing.T, s upstream.Store, want upstream.Stats) {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
}

// allEvents reads every event, page by page.
func allEvents(t *testing.T, s upstream.Store) []upstream.Event {
	t.Helper()
	var all []upstream.Event
	var after int64
	for {
		evs, err := s.Events(context.Background(), after, upstream.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Cursor
	}
}

// checkGapFree fails unless events are numbered 1, 2, 3, … with no key
// twice, and returns their keys.
func checkGapFree(t *testing.T, evs []upstream.Event) []string {
	t.Helper()
	keys := make([]string, len(evs))
	seen := map[string]bool{}
	for i, e := range evs {
		if e.Cursor != int64(i+1) {
			t.Fatalf("event %d has cursor %d: cursors must be 1, 2, 3, …", i, e.Cursor)
		}
		if seen[e.Key] {
			t.Fatalf("key %s applied twice (cursor %d)", e.Key, e.Cursor)
		}
		seen[e.Key] = true
		keys[i] = e.Key
	}
	return keys
}

func testApplySemantics(t *testing.T, h *harness) {
	ctx := ctxT(t)
	s := h.open(t)
	big := `{"x":"` + strings.Repeat("a", upstream.MaxPayloadBytes) + `"}`
	res := mustApply(t, s,
		Act("a", "note", `{ "n" : 1 }`),
		Act("b", "note", `{"n":2}`),
		Act("a", "note", `{"n":3}`), // repeated within the batch
		Act("c", "", `{}`),
		Act("d", "note", `{nope`),
		Act("e", "note", big),
		Act("f", "note", `{"_reject":"no thanks"}`),
		Act("g", "note", `{"_reject":5}`), // not a string: applied
		Act("", "note", `{}`),
		upstream.Action{Key: "h", Type: "note"}, // no payload
		Act("f", "note", `{}`),                  // repeated after its rejection
		Act("", "note", `{}`),
	)
	want := "a=applied b=applied a=duplicate c=rejected(empty type) d=rejected(payload is not valid JSON) " +
		fmt.Sprintf("e=rejected(payload larger than %d bytes) ", upstream.MaxPayloadBytes) +
		"f=rejected(no thanks) g=applied =rejected(empty key) h=rejected(payload is not valid JSON) " +
		"f=rejected(no thanks) =rejected(empty key)"
	if got := Statuses(res); got != want {
		t.Fatalf("results:\n got %s\nwant %s", got, want)
	}

	// Resending: applied keys are duplicates, rejected keys stay rejected
	// with the same error even with a now-valid action; an empty key is
	// never remembered.
	res = mustApply(t, s,
		Act("a", "note", `{}`),
		Act("f", "note", `{"ok":true}`),
		Act("c", "note", `{}`),
		Act("i", "note", `[1, 2]`),
		Act("", "note", `{}`),
	)
	want = "a=duplicate f=rejected(no thanks) c=rejected(empty type) i=applied =rejected(empty key)"
	if got := Statuses(res); got != want {
		t.Fatalf("resend results:\n got %s\nwant %s", got, want)
	}

	mustStats(t, s, upstream.Stats{Applied: 4, Duplicates: 2, Rejected: 11})
	keys, err := s.AppliedKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys, ","); got != "a,b,g,i" {
		t.Fatalf("applied keys = %s, want a,b,g,i", got)
	}
	evs, err := s.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(checkGapFree(t, evs), ","); got != "a,b,g,i" {
		t.Fatalf("event keys = %s, want a,b,g,i", got)
	}
	if string(evs[0].Payload) != `{"n":1}` || string(evs[3].Payload) != `[1,2]` || evs[2].Type != "note" {
		t.Fatalf("events = %+v, want compacted payloads", evs)
	}
	for _, e := range evs {
		if e.AppliedAt.IsZero() || e.AppliedAt.Location() != time.UTC || time.Since(e.AppliedAt) > time.Minute {
			t.Fatalf("applied_at = %v, want a recent UTC time", e.AppliedAt)
		}
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func testEmptyBatch(t *testing.T, h *harness) {
	s := h.open(t)
	for _, batch := range [][]upstream.Action{nil, {}} {
		res, err := s.Apply(context.Background(), batch)
		if err != nil || len(res) != 0 {
			t.Fatalf("Apply(%v) = %v, %v; want no results", batch, res, err)
		}
	}
	mustStats(t, s, upstream.Stats{})
	if evs := allEvents(t, s); len(evs) != 0 {
		t.Fatalf("events = %v", evs)
	}
}

func testRejectionIsFinal(t *testing.T, h *harness) {
	s := h.open(t)
	mustApply(t, s, Act("r", "note", `{"_reject":"quota exceeded"}`))
	for range 3 {
		res := mustApply(t, s, Act("r", "note", `{"fine":true}`), Act("ok", "note", `{}`))
		if got := Statuses(res); got != "r=rejected(quota exceeded) ok=applied" && got != "r=rejected(quota exceeded) ok=duplicate" {
			t.Fatalf("resend: %s", got)
		}
	}
	mustStats(t, s, upstream.Stats{Applied: 1, Duplicates: 2, Rejected: 4})
	if evs := allEvents(t, s); len(evs) != 1 || evs[0].Key != "ok" {
		t.Fatalf("events = %+v, want only ok", evs)
	}
}

func testEventsPaging(t *testing.T, h *harness) {
	ctx := ctxT(t)
	s := h.open(t)
	const n = upstream.MaxLimit + 5
	var want []string
	for start := 0; start < n; start += upstream.MaxBatch {
		var batch []upstream.Action
		for i := start; i < min(n, start+upstream.MaxBatch); i++ {
			k := fmt.Sprintf("k%05d-%d", n-i, i) // not in key order: cursors follow the batch
			batch = append(batch, Act(k, "t", fmt.Sprintf(`{"i":%d}`, i)))
			want = append(want, k)
		}
		mustApply(t, s, batch...)
	}
	for _, tc := range []struct {
		after       int64
		limit, want int
	}{
		{0, 0, upstream.DefaultLimit},
		{0, -1, upstream.DefaultLimit},
		{0, 3, 3},
		{0, upstream.MaxLimit + 100, upstream.MaxLimit},
		{n - 2, 10, 2},
		{n, 10, 0},
		{n + 50, 10, 0},
	} {
		evs, err := s.Events(ctx, tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != tc.want {
			t.Fatalf("Events(after %d, limit %d): %d events, want %d", tc.after, tc.limit, len(evs), tc.want)
		}
		for i, e := range evs {
			if e.Cursor != tc.after+int64(i)+1 || e.Key != want[e.Cursor-1] {
				t.Fatalf("Events(after %d, limit %d)[%d] = cursor %d key %s", tc.after, tc.limit, i, e.Cursor, e.Key)
			}
		}
	}
	// Small pages, each going on from the last cursor.
	var got []string
	var after int64
	for {
		evs, err := s.Events(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			got = append(got, e.Key)
			after = e.Cursor
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged through %d events, want %d in batch order", len(got), len(want))
	}
	keys, err := s.AppliedKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("AppliedKeys: %d keys, want %d in apply order", len(keys), len(want))
	}
}

func testReopen(t *testing.T, h *harness) {
	s, err := h.db.Open()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, Act("a", "t", `{}`), Act("a", "t", `{}`), Act("b", "", `{}`))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = h.open(t)
	mustStats(t, s, upstream.Stats{Applied: 1, Duplicates: 1, Rejected: 1})
	res := mustApply(t, s, Act("a", "t", `{}`), Act("b", "t", `{}`), Act("c", "t", `{}`))
	if got := Statuses(res); got != "a=duplicate b=rejected(empty type) c=applied" {
		t.Fatalf("after reopen: %s", got)
	}
	if got := strings.Join(checkGapFree(t, allEvents(t, s)), ","); got != "a,c" {
		t.Fatalf("events after reopen: %s", got)
	}
	if err := s.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// sendOverlapping has each of workers goroutines send every one of keys
// keys, in its own random order and batch sizes, to stores[w %
// len(stores)], and returns how many results of each status came back.
func sendOverlapping(t *testing.T, stores []upstream.Store, workers, keys int) map[string]int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			s := stores[w%len(stores)]
			r := rand.New(rand.NewPCG(uint64(w), 1))
			perm := r.Perm(keys)
			for len(perm) > 0 {
				n := min(len(perm), 1+r.IntN(10))
				batch := make([]upstream.Action, n)
				for i, k := range perm[:n] {
					batch[i] = Act(fmt.Sprintf("key-%04d", k), "t", fmt.Sprintf(`{"w":%d}`, w))
				}
				perm = perm[n:]
				res, err := s.Apply(context.Background(), batch)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, r := range res {
					counts[r.Status]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return counts
}

func checkOnce(t *testing.T, s upstream.Store, counts map[string]int, workers, keys int) {
	t.Helper()
	if counts[upstream.StatusApplied] != keys || counts[upstream.StatusDuplicate] != (workers-1)*keys || len(counts) != 2 {
		t.Fatalf("results %v, want %d applied and %d duplicate", counts, keys, (workers-1)*keys)
	}
	got := checkGapFree(t, allEvents(t, s))
	if len(got) != keys {
		t.Fatalf("%d events, want %d", len(got), keys)
	}
	applied, err := s.AppliedKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, got) {
		t.Fatal("AppliedKeys differ from the events' keys")
	}
	mustStats(t, s, upstream.Stats{Applied: int64(keys), Duplicates: int64((workers - 1) * keys)})
	if err := s.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func testConcurrentExactlyOnce(t *testing.T, h *harness) {
	s := h.open(t)
	const workers, keys = 16, 60
	counts := sendOverlapping(t, []upstream.Store{s}, workers, keys)
	checkOnce(t, s, counts, workers, keys)
}

// receive reads n events from ch, failing on a close or after a while.
func receive(t *testing.T, ch <-chan upstream.Event, n int) []upstream.Event {
	t.Helper()
	var got []upstream.Event
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed after %d of %d events", len(got), n)
			}
			got = append(got, e)
		case <-timeout:
			t.Fatalf("got %d of %d events in 20s", len(got), n)
		}
	}
	return got
}

func keysOf(evs []upstream.Event) string {
	var ks []string
	for _, e := range evs {
		ks = append(ks, e.Key)
	}
	return strings.Join(ks, ",")
}

func testSubscribeInOrder(t *testing.T, h *harness) {
	s := h.open(t)
	ch, cancel := s.Subscribe(100)
	defer cancel()
	mustApply(t, s, Act("a", "t", `1`), Act("b", "t", `2`), Act("r", "t", `{"_reject":"no"}`))
	mustApply(t, s, Act("a", "t", `1`), Act("c", "t", `3`))
	got := receive(t, ch, 3)
	if keysOf(got) != "a,b,c" {
		t.Fatalf("subscriber got %s, want a,b,c", keysOf(got))
	}
	for i, e := range got {
		if e.Cursor != int64(i+1) || e.AppliedAt.IsZero() || e.Type != "t" {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	if string(got[2].Payload) != "3" {
		t.Fatalf("payload = %s", got[2].Payload)
	}
}

// drain reads ch until it is closed, failing after a while.
func drain(t *testing.T, ch <-chan upstream.Event) []upstream.Event {
	t.Helper()
	var got []upstream.Event
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, e)
		case <-timeout:
			t.Fatalf("subscription still open after 20s (got %s)", keysOf(got))
		}
	}
}

func testSlowSubscriberDropped(t *testing.T, h *harness) {
	s := h.open(t)
	slow, cancelSlow := s.Subscribe(2)
	fast, cancelFast := s.Subscribe(10)
	defer cancelFast()
	mustApply(t, s, Act("a", "t", `1`), Act("b", "t", `2`), Act("c", "t", `3`))
	if got := keysOf(receive(t, fast, 3)); got != "a,b,c" {
		t.Fatalf("fast subscriber got %s", got)
	}
	// A store may publish after Apply returns, and a, b, c with d in one
	// go; e, applied after d arrived, is published after that: once e
	// arrives, the slow subscriber, which read nothing, has been closed.
	for _, k := range []string{"d", "e"} {
		mustApply(t, s, Act(k, "t", `4`))
		if got := keysOf(receive(t, fast, 1)); got != k {
			t.Fatalf("fast subscriber got %s, want %s", got, k)
		}
	}
	if got := keysOf(drain(t, slow)); got != "a,b" {
		t.Fatalf("slow subscriber got %s before being dropped, want a,b", got)
	}
	cancelSlow() // harmless after a drop
}

func testCancel(t *testing.T, h *harness) {
	s := h.open(t)
	ch, cancel := s.Subscribe(10)
	other, cancelOther := s.Subscribe(10)
	defer cancelOther()
	cancel()
	cancel()
	if got := drain(t, ch); len(got) != 0 {
		t.Fatalf("cancelled subscriber got %s", keysOf(got))
	}
	mustApply(t, s, Act("a", "t", `1`))
	if got := keysOf(receive(t, other, 1)); got != "a" {
		t.Fatalf("other subscriber got %s", got)
	}
}

func testCloseClosesSubscriptions(t *testing.T, h *harness) {
	s, err := h.db.Open()
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel := s.Subscribe(10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	drain(t, ch)
	cancel() // harmless after Close
	late, cancelLate := s.Subscribe(10)
	defer cancelLate()
	drain(t, late)
}

func testNewerSchema(t *testing.T, h *harness) {
	if h.db.BumpSchema == nil {
		t.Skip("the backend cannot set its schema version")
	}
	s, err := h.db.Open()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, Act("a", "t", `{}`))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.db.BumpSchema(); err != nil {
		t.Fatal(err)
	}
	s, err = h.db.Open()
	if err == nil {
		s.Close()
		t.Fatal("opened a database of a newer schema")
	}
	if !errors.Is(err, upstream.ErrNewerSchema) || !strings.Contains(err.Error(), "newer synctray") {
		t.Fatalf("err = %v, want ErrNewerSchema saying a newer synctray wrote it", err)
	}
}

func testPing(t *testing.T, h *harness) {
	s, err := h.db.Open()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping on an open store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping on a closed store succeeded")
	}
}

func testInstancesExactlyOnce(t *testing.T, h *harness) {
	a, b := h.open(t), h.open(t)
	const workers, keys = 16, 80
	counts := sendOverlapping(t, []upstream.Store{a, b}, workers, keys)
	checkOnce(t, a, counts, workers, keys)
	if got, want := allEvents(t, b), allEvents(t, a); !slices.EqualFunc(got, want, func(x, y upstream.Event) bool {
		return x.Cursor == y.Cursor && x.Key == y.Key
	}) {
		t.Fatal("the instances list different events")
	}
}

func testInstancesGapFreeCursor(t *testing.T, h *harness) {
	stores := []upstream.Store{h.open(t), h.open(t)}
	const writers, batches = 8, 25
	var done atomic.Bool
	var readerErr error
	var seen []string
	var readerWG sync.WaitGroup
	// A reader that goes on from the last cursor it saw, as a host
	// following GET /v1/events?after= does, on either instance.
	readerWG.Go(func() {
		var after int64
		for i := 0; ; i++ {
			finished := done.Load()
			evs, err := stores[i%2].Events(context.Background(), after, 50)
			if err != nil {
				readerErr = err
				return
			}
			for _, e := range evs {
				if e.Cursor != after+1 {
					readerErr = fmt.Errorf("after cursor %d came %d: the reader skipped an event", after, e.Cursor)
					return
				}
				after = e.Cursor
				seen = append(seen, e.Key)
			}
			if finished && len(evs) == 0 {
				return
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := range batches {
				batch := make([]upstream.Action, 1+r.IntN(5))
				for j := range batch {
					batch[j] = Act(fmt.Sprintf("w%d-b%03d-%d", w, i, j), "t", `{}`)
				}
				if _, err := stores[w%2].Apply(context.Background(), batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	readerWG.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	all := checkGapFree(t, allEvents(t, stores[0]))
	if !slices.Equal(seen, all) {
		t.Fatalf("the reader saw %d events, the store holds %d", len(seen), len(all))
	}
	// Each writer's batches, one at a time, keep their order (a host's
	// FIFO).
	last := map[string]string{}
	for _, k := range all {
		w := k[:strings.Index(k, "-")]
		if k < last[w] {
			t.Fatalf("key %s after %s: a writer's order was not kept", k, last[w])
		}
		last[w] = k
	}
}

func testInstancesSubscribe(t *testing.T, h *harness) {
	a, b := h.open(t), h.open(t)
	chA, cancelA := a.Subscribe(1000)
	defer cancelA()
	chB, cancelB := b.Subscribe(1000)
	defer cancelB()
	mustApply(t, b, Act("from-b-1", "t", `1`), Act("from-b-2", "t", `2`))
	mustApply(t, a, Act("from-a", "t", `3`))
	mustApply(t, b, Act("from-b-3", "t", `4`), Act("from-a", "t", `3`))
	want := "from-b-1,from-b-2,from-a,from-b-3"
	for name, ch := range map[string]<-chan upstream.Event{"a": chA, "b": chB} {
		got := receive(t, ch, 4)
		if keysOf(got) != want {
			t.Fatalf("subscriber on %s got %s, want %s", name, keysOf(got), want)
		}
		for i, e := range got {
			if e.Cursor != int64(i+1) {
				t.Fatalf("subscriber on %s: event %d has cursor %d", name, i, e.Cursor)
			}
		}
	}
}
