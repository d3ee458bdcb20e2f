package commands

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count commands by name and result code ("ok" when accepted) and time them.
type metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// loads counts the aggregate states read other than from memory, by where from: "spill"
	// or "stream" (the latter makes nats-server read the message block holding it).
	loads *prometheus.CounterVec
	// behind counts the cached states found behind a message of their subject the spill's
	// follower read (cache.notBehind).
	behind prometheus.Counter
	// alone counts the commands of batches carried out again alone (Execute): an append the
	// store refused or did not answer, or a duplicate; a bulk load that makes many is slow.
	alone prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "acl_commands_total",
			Help: "Commands answered, by command name and result code (ok when accepted).",
		}, []string{"command", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "acl_command_duration_seconds",
			Help:    "Time from receiving a command to answering it, by command name.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25, 1, 10},
		}, []string{"command"}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "acl_command_state_loads_total",
			Help: "Aggregate states the command service read other than from memory, by where from: spill (local disk) or stream.",
		}, []string{"from"}),
		behind: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "acl_command_states_behind_total",
			Help: "Cached aggregate states found behind a message of their subject that the command service's spill follower has read, and read again: another instance's write whose invalidation was lost, or this instance's own write read in the moment before its state was published.",
		}),
		alone: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "acl_batch_commands_alone_total",
			Help: "Commands of batch requests carried out again alone: their append was refused (another writer came first), not answered, or a duplicate.",
		}),
	}
}

// register adds the metrics to r; when another service of the process registered them
// already, this one shares them.
func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	var err error
	if m.total, err = registerOrShare(r, m.total); err != nil {
		return err
	}
	if m.duration, err = registerOrShare(r, m.duration); err != nil {
		return err
	}
	if m.loads, err = registerOrShare(r, m.loads); err != nil {
		return err
	}
	if m.behind, err = registerOrShare(r, m.behind); err != nil {
		return err
	}
	m.alone, err = registerOrShare(r, m.alone)
	return err
}

func registerOrShare[T prometheus.Collector](r prometheus.Registerer, c T) (T, error) {
	err := r.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("commands: register metrics: %w", err)
}

// metricName bounds the label's values to the known commands.
func metricName(name string) string {
	if !knownCommand(name) {
		return "unknown"
	}
	return name
}
