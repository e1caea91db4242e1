package localserver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/clock"
)

// scrape is one parsed answer of GET /metrics.
type scrape map[string]*dto.MetricFamily

// scrape fetches /metrics over HTTP with the API token and parses it as
// the Prometheus text format.
func (e *env) scrape() scrape {
	e.t.Helper()
	r, err := http.NewRequest("GET", e.url+"/metrics", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		e.t.Fatalf("GET /metrics = %d %s, want 200 in the text format", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		e.t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the sample of name whose labels include labels
// ("k=v" pairs); -1 when there is none. A histogram's value is its count.
func (s scrape) value(name string, labels ...string) float64 {
	fam, ok := s[name]
	if !ok {
		return -1
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// scrapeWhen scrapes until name (with labels) has the value want: the
// counters fed by the outbox's commits are told just after the write
// returns, so a scrape right after it may not have them yet.
func (e *env) scrapeWhen(want float64, name string, labels ...string) scrape {
	e.t.Helper()
	var s scrape
	testsupport.WaitFor(e.t, name+" to reach its value", func() bool {
		s = e.scrape()
		return s.value(name, labels...) == want
	})
	return s
}

func (s scrape) want(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	if got := s.value(name, labels...); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestMetrics(t *testing.T) {
	// An HTTP upstream that takes writes (201), refuses those to /bad
	// (422), and answers 503 to everything while down is set.
	var down atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case down.Load():
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case r.URL.Path == "/bad":
			http.Error(w, "bad todo", http.StatusUnprocessableEntity)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(up.Close)
	// Working offline: nothing is sent until the test says "sync now".
	e := startHTTPHost(t, up.URL, localserver.Config{WorkOffline: true})
	async := map[string]string{"Prefer": "respond-async"}
	write := func(t *testing.T, path string) {
		t.Helper()
		if resp, data := e.write("POST", path, `{"title":"x"}`, testsupport.NewKey(), async); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("write %s = %d %s, want 202", path, resp.StatusCode, data)
		}
	}
	syncNow := func(t *testing.T, want int) {
		t.Helper()
		if resp, data := e.req("POST", "/api/sync", nil, nil); resp.StatusCode != want {
			t.Fatalf("sync = %d %s, want %d", resp.StatusCode, data, want)
		}
	}

	t.Run("needs the API token like /api", func(t *testing.T) {
		resp, err := http.Get(e.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET /metrics without a token = %d, want 401", resp.StatusCode)
		}
	})

	t.Run("counts queued actions and the backlog before any sync", func(t *testing.T) {
		write(t, "/todos")
		write(t, "/todos")
		write(t, "/bad")
		s := e.scrapeWhen(3, "synctray_actions_enqueued_total")
		s.want(t, 3, "synctray_actions", "state=queued")
		s.want(t, 0, "synctray_actions", "state=synced")
		s.want(t, 3, "synctray_actions_enqueued_total")
		s.want(t, 0, "synctray_actions_synced_total")
		s.want(t, 1, "synctray_state", "state=working_offline")
		s.want(t, 0, "synctray_state", "state=online")
		if age := s.value("synctray_backlog_age_seconds"); age < 0 {
			t.Errorf("backlog age = %v, want a queued action's age", age)
		}
	})

	t.Run("counts what a sync delivered and refused, by outcome and status", func(t *testing.T) {
		syncNow(t, http.StatusOK)
		s := e.scrapeWhen(2, "synctray_actions_synced_total")
		s.want(t, 0, "synctray_actions", "state=queued")
		s.want(t, 2, "synctray_actions", "state=synced")
		s.want(t, 1, "synctray_actions", "state=failed")
		s.want(t, 2, "synctray_actions_synced_total")
		s.want(t, 1, "synctray_actions_failed_total")
		s.want(t, 2, "synctray_upstream_requests_total", "outcome=delivered", "code=201")
		s.want(t, 1, "synctray_upstream_requests_total", "outcome=refused", "code=422")
		s.want(t, 3, "synctray_upstream_request_duration_seconds")
		if n := s.value("synctray_sync_batch_duration_seconds"); n < 1 {
			t.Errorf("batch duration count = %v, want at least one batch", n)
		}
		s.want(t, 0, "synctray_backlog_age_seconds")
	})

	t.Run("a 503 is a transient request, and the host offline with problem unreachable", func(t *testing.T) {
		down.Store(true)
		write(t, "/todos")
		syncNow(t, http.StatusBadGateway)
		s := e.scrapeWhen(4, "synctray_actions_enqueued_total")
		s.want(t, 1, "synctray_upstream_requests_total", "outcome=transient", "code=503")
		s.want(t, 1, "synctray_actions", "state=queued")
		s.want(t, 4, "synctray_actions_enqueued_total")
		s.want(t, 2, "synctray_actions_synced_total")
		// Resuming automatic sync shows the problem the 503 left (working
		// offline hides it).
		if resp, data := e.req("PUT", "/api/mode", `{"work_offline":false}`, nil); resp.StatusCode != 200 {
			t.Fatalf("mode = %d %s", resp.StatusCode, data)
		}
		s = e.scrape()
		s.want(t, 1, "synctray_state", "state=offline")
		s.want(t, 0, "synctray_state", "state=working_offline")
		s.want(t, 1, "synctray_problem", "code=unreachable")
		s.want(t, 0, "synctray_problem", "code=unauthorized")
		if age := s.value("synctray_backlog_age_seconds"); age < 0 {
			t.Errorf("backlog age = %v, want the queued action's age", age)
		}
	})
}

// The backlog's age is the oldest queued action's, on the host's clock; and
// a blocked host says so, with its problem.
func TestMetricsBacklogAgeAndBlockedState(t *testing.T) {
	var refuse atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(up.Close)
	clk := clock.NewFake(time.Now().Truncate(time.Second))
	e := startHTTPHost(t, up.URL, localserver.Config{Clock: clk, WorkOffline: true})
	async := map[string]string{"Prefer": "respond-async"}
	if resp, data := e.write("POST", "/todos", `{"title":"old"}`, testsupport.NewKey(), async); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("write = %d %s, want 202", resp.StatusCode, data)
	}
	clk.Advance(90 * time.Second)
	if resp, data := e.write("POST", "/todos", `{"title":"new"}`, testsupport.NewKey(), async); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("write = %d %s, want 202", resp.StatusCode, data)
	}
	clk.Advance(10 * time.Second)
	s := e.scrapeWhen(2, "synctray_actions_enqueued_total")
	if age := s.value("synctray_backlog_age_seconds"); age < 100 || age >= 101 {
		t.Errorf("backlog age = %v s, want the oldest queued action's: 100 s on the host's clock", age)
	}

	refuse.Store(true)
	if resp, data := e.req("PUT", "/api/mode", `{"work_offline":false}`, nil); resp.StatusCode != 200 {
		t.Fatalf("mode = %d %s", resp.StatusCode, data)
	}
	// The state turns blocked as the 401 comes in, and the writes are back
	// in the queue once their outcomes are recorded.
	testsupport.WaitFor(t, "the host blocked by the 401, the writes queued again", func() bool {
		s = e.scrape()
		return s.value("synctray_state", "state=blocked") == 1 && s.value("synctray_actions", "state=queued") == 2
	})
	s.want(t, 0, "synctray_state", "state=online")
	s.want(t, 0, "synctray_state", "state=offline")
	s.want(t, 1, "synctray_problem", "code=unauthorized")
	s.want(t, 0, "synctray_actions", "state=failed") // blocked: kept, not failed
	s.want(t, 0, "synctray_actions_failed_total")
	if age := s.value("synctray_backlog_age_seconds"); age < 100 {
		t.Errorf("backlog age = %v s while blocked, want at least 100 s", age)
	}
}
