package upstream

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// (not the global one): the actions by result, the batches' latency and
// errors, the live WebSocket subscribers, the Go runtime and the process,
// and whatever the store collects itself (a Store that is also a
// prometheus.Collector: pgstore's pool statistics).
type metrics struct {
	reg      *prometheus.Registry
	actions  *prometheus.CounterVec
	batchDur prometheus.Histogram
	batchErr prometheus.Counter
	applied  prometheus.Counter // actions.WithLabelValues(StatusApplied), and so on
	dup      prometheus.Counter
	rejected prometheus.Counter
}

// newMetrics registers the server's metrics; subscribers is read at each
// scrape. A store's collector that clashes with them is left out, logged.
func newMetrics(store Store, subscribers func() int, log *slog.Logger) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "synctray_upstream_actions_total",
			Help: "Actions answered by POST /v1/actions on this instance, by result (applied, duplicate, rejected)."},
			[]string{"result"}),
		batchDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "synctray_upstream_batch_duration_seconds",
			Help:    "Time to apply one batch in the store, from the decoded request to the committed answer.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		batchErr: prometheus.NewCounter(prometheus.CounterOpts{Name: "synctray_upstream_batch_errors_total",
			Help: "Batches the store could not apply (answered 500; nothing of them applied)."}),
	}
	m.applied = m.actions.WithLabelValues(StatusApplied)
	m.dup = m.actions.WithLabelValues(StatusDuplicate)
	m.rejected = m.actions.WithLabelValues(StatusRejected)
	m.reg.MustRegister(m.actions, m.batchDur, m.batchErr,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "synctray_upstream_ws_subscribers",
			Help: "Live /v1/events/ws connections on this instance."}, func() float64 { return float64(subscribers()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if c, ok := store.(prometheus.Collector); ok {
		if err := m.reg.Register(c); err != nil {
			log.Error("the store's metrics are left out", "err", err)
		}
	}
	return m
}

// batch records one applied batch: its results and how long Apply took.
func (m *metrics) batch(results []Result, took time.Duration) {
	m.batchDur.Observe(took.Seconds())
	for _, r := range results {
		switch r.Status {
		case StatusApplied:
			m.applied.Inc()
		case StatusDuplicate:
			m.dup.Inc()
		default:
			m.rejected.Inc()
		}
	}
}

// handler serves the metrics in the Prometheus text format; a metric that
// cannot be read is left out and logged, the rest is served.
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	})
}
