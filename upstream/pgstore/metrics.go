package pgstore

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The pool's statistics (pgxpool.Stat), read at each scrape; the
// upstream's /metrics serves them because Store is a prometheus.Collector.
var (
	poolAcquiredDesc = prometheus.NewDesc("synctray_upstream_db_pool_acquired_conns",
		"Connections of the pool in use now.", nil, nil)
	poolIdleDesc = prometheus.NewDesc("synctray_upstream_db_pool_idle_conns",
		"Idle connections of the pool.", nil, nil)
	poolTotalDesc = prometheus.NewDesc("synctray_upstream_db_pool_total_conns",
		"Connections of the pool: acquired, idle and being opened.", nil, nil)
	poolMaxDesc = prometheus.NewDesc("synctray_upstream_db_pool_max_conns",
		"Most connections of the pool (--db-pool), besides the listener's.", nil, nil)
	poolAcquiresDesc = prometheus.NewDesc("synctray_upstream_db_pool_acquires_total",
		"Connections acquired from the pool.", nil, nil)
	poolWaitsDesc = prometheus.NewDesc("synctray_upstream_db_pool_acquire_waits_total",
		"Acquires that had to wait for a connection (none was idle).", nil, nil)
	poolWaitDesc = prometheus.NewDesc("synctray_upstream_db_pool_acquire_wait_seconds_total",
		"Time spent waiting for a connection by the acquires that had to wait; its rate over the rate of waits is the mean wait.", nil, nil)
	listenerDesc = prometheus.NewDesc("synctray_upstream_db_listener_up",
		"1 while the LISTEN connection is up (events of other instances arrive at once), 0 while polling.", nil, nil)
)

var _ prometheus.Collector = (*Store)(nil)

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquiredDesc, poolIdleDesc, poolTotalDesc, poolMaxDesc,
		poolAcquiresDesc, poolWaitsDesc, poolWaitDesc, listenerDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	st := s.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(poolAcquiredDesc, float64(st.AcquiredConns()))
	gauge(poolIdleDesc, float64(st.IdleConns()))
	gauge(poolTotalDesc, float64(st.TotalConns()))
	gauge(poolMaxDesc, float64(st.MaxConns()))
	counter(poolAcquiresDesc, float64(st.AcquireCount()))
	counter(poolWaitsDesc, float64(st.EmptyAcquireCount()))
	counter(poolWaitDesc, st.EmptyAcquireWaitTime().Seconds())
	up := 0.0
	if s.listening.Load() {
		up = 1
	}
	gauge(listenerDesc, up)
}
