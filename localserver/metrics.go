package localserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"synctray/internal/failure"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

// gaugeSource is what the metrics read at scrape time: the outbox's
// counts and oldest queued action, and the engine's status.
type gaugeSource interface {
	Counts(ctx context.Context) (outbox.Counts, error)
	OldestQueuedAt(ctx context.Context) (time.Time, bool, error)
	Status() syncer.Status
}

// hostGauges is the host's gaugeSource; it reads h.db and h.engine at
// scrape time, when both are open.
type hostGauges struct{ h *Host }

func (g hostGauges) Counts(ctx context.Context) (outbox.Counts, error) { return g.h.db.Counts(ctx) }
func (g hostGauges) OldestQueuedAt(ctx context.Context) (time.Time, bool, error) {
	return g.h.db.OldestQueuedAt(ctx)
}
func (g hostGauges) Status() syncer.Status { return g.h.engine.Status() }

// hostStates and problemCodes are every value of the state and problem
// gauges (design §11): each is always present, 1 or 0.
var (
	hostStates   = []string{syncer.StateOnline, syncer.StateOffline, syncer.StateWorkingOffline, syncer.StateBlocked}
	problemCodes = []string{failure.CodeUnreachable, failure.CodeUnauthorized, failure.CodeProtocol, failure.CodeDiskFull, failure.CodeStorage}
)

// metrics are the host's Prometheus metrics, in a registry of their own
// (not the global one): counters fed by the outbox's commits and the
// engine's observations, and gauges read from the outbox and the status
// at each scrape.
type metrics struct {
	reg                *prometheus.Registry
	enqueued, synced   prometheus.Counter
	failed             prometheus.Counter
	requests           *prometheus.CounterVec
	requestDur, batchD prometheus.Histogram
}

// newMetrics registers the host's metrics; src is read at each scrape,
// now is the host's clock (for the backlog's age).
func newMetrics(src gaugeSource, now func() time.Time) (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{Name: "synctray_actions_enqueued_total",
			Help: "Actions added to the outbox."}),
		synced: prometheus.NewCounter(prometheus.CounterOpts{Name: "synctray_actions_synced_total",
			Help: "Actions the upstream took (applied or duplicate)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "synctray_actions_failed_total",
			Help: "Times an action failed for good (the upstream refused it, or it gave up)."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "synctray_upstream_requests_total",
			Help: "Requests sent upstream, by outcome (the failure policy's kind) and HTTP status (none: no answer)."},
			[]string{"outcome", "code"}),
		requestDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "synctray_upstream_request_duration_seconds",
			Help: "Time of one upstream request, answer or failure.", Buckets: prometheus.DefBuckets}),
		batchD: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "synctray_sync_batch_duration_seconds",
			Help:    "Time to send one claimed batch and record its outcomes.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
	}
	for _, c := range []prometheus.Collector{m.enqueued, m.synced, m.failed, m.requests, m.requestDur, m.batchD,
		&scrapeCollector{src: src, now: now}} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// actionsChanged counts the changes of one outbox commit. An action is
// new when it is queued without an attempt: every other way into queued
// (retry, back-off, crash recovery) passes through syncing, which counts
// one.
func (m *metrics) actionsChanged(acts []outbox.Action) {
	for _, a := range acts {
		switch {
		case a.State == outbox.Queued && a.Attempts == 0:
			m.enqueued.Inc()
		case a.State == outbox.Synced:
			m.synced.Inc()
		case a.State == outbox.Failed:
			m.failed.Inc()
		}
	}
}

// observe records one of the engine's observations.
func (m *metrics) observe(o syncer.Observation) {
	switch o.What {
	case syncer.ObserveRequest:
		code := "none"
		if o.Code > 0 {
			code = strconv.Itoa(o.Code)
		}
		m.requests.WithLabelValues(o.Outcome.String(), code).Inc()
		m.requestDur.Observe(o.Duration.Seconds())
	case syncer.ObserveBatch:
		m.batchD.Observe(o.Duration.Seconds())
	}
}

// handler serves the metrics in the Prometheus text format. A gauge that
// cannot be read (the outbox failing) is left out and logged; the rest
// is served.
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	})
}

// scrapeCollector reads the gauges at each scrape, so they are never
// stale: the actions by state and the backlog's age from the outbox, the
// state and problem from the engine's status.
type scrapeCollector struct {
	src gaugeSource
	now func() time.Time
}

var (
	actionsDesc = prometheus.NewDesc("synctray_actions", "Actions in the outbox, by state.", []string{"state"}, nil)
	backlogDesc = prometheus.NewDesc("synctray_backlog_age_seconds",
		"Age of the oldest queued action (the head of the queue); 0 when none is queued.", nil, nil)
	stateDesc   = prometheus.NewDesc("synctray_state", "The host's state (design §11): 1 for the current one, else 0.", []string{"state"}, nil)
	problemDesc = prometheus.NewDesc("synctray_problem", "Why the host is not online: 1 for the current problem code, else 0.", []string{"code"}, nil)
)

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- actionsDesc
	ch <- backlogDesc
	ch <- stateDesc
	ch <- problemDesc
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := c.src.Counts(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(actionsDesc, fmt.Errorf("metrics: %w", err))
	} else {
		for _, s := range outbox.States {
			ch <- gauge(actionsDesc, float64(counts[s]), string(s))
		}
	}
	if at, ok, err := c.src.OldestQueuedAt(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, fmt.Errorf("metrics: %w", err))
	} else {
		age := 0.0
		if ok {
			age = max(0, c.now().Sub(at).Seconds())
		}
		ch <- gauge(backlogDesc, age)
	}
	st := c.src.Status()
	for _, s := range hostStates {
		ch <- gauge(stateDesc, b2f(st.State == s), s)
	}
	for _, code := range problemCodes {
		ch <- gauge(problemDesc, b2f(st.Problem != nil && st.Problem.Code == code), code)
	}
}

// gauge is a gauge's value at this scrape (an invalid metric, which the
// handler logs, if its labels do not match its description).
func gauge(desc *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
