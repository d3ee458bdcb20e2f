package replay

import "github.com/prometheus/client_golang/prometheus"

// Collectors are replay's metrics, for the caller's registry: where as_of answers read their
// events, and how the as_of chain's head keeps up. An as_of state reads the events after its
// checkpoint from the event log ("log"), or from the stream ("stream") when the log has not
// reached its moment yet: a stream count that keeps growing says the log does not keep up. Once caught up it applies the projector's batches ("mirrored"); it replays from the
// stream at a start, after its queue dropped batches, and for gaps ("replayed"). A replayed
// count that keeps growing on a running server says the filler cannot keep up with the
// projector's batches, and its CPU is then again that of a second projector.
func (s *Service) Collectors() []prometheus.Collector {
	m := s.mirror
	events := func(how string, v func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "acl_asof_chain_events_total",
			Help:        "Events brought into the as_of chain's newest state, by how: mirrored (the projector's committed batches) or replayed (read again from the stream).",
			ConstLabels: prometheus.Labels{"how": how},
		}, func() float64 { return float64(v()) })
	}
	built := func(from string, v func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "acl_asof_states_built_total",
			Help:        "as_of states built, by where their events after the checkpoint came from: the event log, or the stream (moments the log has not reached yet).",
			ConstLabels: prometheus.Labels{"events": from},
		}, func() float64 { return float64(v()) })
	}
	states := func(from string, v func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "acl_asof_state_bases_total",
			Help:        "as_of states built, by where the states they update were read: the state versions (one seek each), or the checkpoint's tables (each read checks every table; the versions had not reached the checkpoint yet, as after a first start).",
			ConstLabels: prometheus.Labels{"states": from},
		}, func() float64 { return float64(v()) })
	}
	return []prometheus.Collector{
		built("log", s.builtFrom.log.Load),
		built("stream", s.builtFrom.stream.Load),
		states("versions", s.statesFrom.versions.Load),
		states("tables", s.statesFrom.tables.Load),
		events("mirrored", m.applied.Load),
		events("replayed", m.replayed.Load),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "acl_asof_chain_batches_dropped_total",
			Help: "Projector batches the as_of chain's queue had no room for (their events are replayed instead).",
		}, func() float64 { return float64(m.dropped.Load()) }),
	}
}
