package projections

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// serverMetrics are the query latency by query and the errors by code; with a projector, its
// applied sequence and its lag behind the stream (read at scrape time: no polling loop).
type serverMetrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
	// byQuery is latency's series of each query name, resolved once: WithLabelValues per
	// query (a hash and a locked lookup) was a tenth of the server's own cost of a check.
	byQuery map[string]prometheus.Observer
}

// queryNames are the query label values; any other name is counted as "other".
var queryNames = []string{"check", "visible", "permissions", "principals", "recipients", "tenant", "history", "diff", "other"}

func newServerMetrics(reg prometheus.Registerer, proj *Projector, log *slog.Logger) *serverMetrics {
	m := &serverMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "acl_query_duration_seconds",
			Help:    "Time to answer a query, by query name.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 4, 12), // 5 µs .. 21 s
		}, []string{"query"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "acl_query_errors_total",
			Help: "Queries answered with an error, by query name and error code.",
		}, []string{"query", "code"}),
	}
	m.byQuery = make(map[string]prometheus.Observer, len(queryNames))
	for _, n := range queryNames {
		m.byQuery[n] = m.latency.WithLabelValues(n)
	}
	if reg == nil {
		return m
	}
	cs := []prometheus.Collector{m.latency, m.errors}
	if proj != nil {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "acl_projector_applied_sequence",
				Help: "Last stream sequence applied to the read model.",
			}, func() float64 { return float64(proj.Applied()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "acl_projector_lag",
				Help: "Stream messages not yet applied to the read model.",
			}, func() float64 { return float64(proj.lag()) }),
			loadsFrom("handoff", func() uint64 { t, _ := proj.handoff.loadsOf(); return t }),
			loadsFrom("readmodel", func() uint64 { _, r := proj.handoff.loadsOf(); return r }),
		)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			log.Warn("projections: metric not registered", "err", err)
		}
	}
	return m
}

// loadsFrom counts the principal and record states the projector loaded (not found in its
// cache, not created by their registration) from one source: a command service's offer
// (handoff.go) or the read model.
func loadsFrom(from string, n func() uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "acl_projector_state_loads_total",
		Help:        "Principal and record states the projector loaded, by where from: handoff (the state a command of this process decided on) or readmodel (a Pebble read).",
		ConstLabels: prometheus.Labels{"from": from},
	}, func() float64 { return float64(n()) })
}

// observe records one query. Unknown query names share one label value, so that a client
// cannot grow the number of series.
func (m *serverMetrics) observe(name string, start time.Time, err error) {
	o, ok := m.byQuery[name]
	if !ok {
		name, o = "other", m.byQuery["other"]
	}
	o.Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(name, string(codeOf(err))).Inc()
	}
}

// lag asks the stream for its last sequence; 0 when it cannot say.
func (p *Projector) lag() uint64 {
	if p.store == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	last, err := p.store.LastSeq(ctx)
	applied := p.Applied()
	if err != nil || last < applied {
		return 0
	}
	return last - applied
}
