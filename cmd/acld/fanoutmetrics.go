package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acl-es/acl/events"
)

// fanoutMetrics tell how the stream's followers keep up through the consumer they share
// (events.Fanout): a follower that falls behind reads alone, through a consumer of its own,
// until it caught up; while that goes on the stream is sent and decoded more than once.
func fanoutMetrics(f *events.Fanout) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "acl_stream_shared_consumers_total",
			Help: "Consumers of the stream started to be shared by the followers (projector, audit index, command spill, event log): one at the start, one more each time all had fallen behind or it ended in an error."},
			func() float64 { t, _ := f.Stats(); return float64(t) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "acl_stream_followers_behind_total",
			Help: "Followers dropped from the shared consumer for falling more than 8,192 messages behind; each read alone until it caught up."},
			func() float64 { _, d := f.Stats(); return float64(d) }),
	}
}
