package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets, as HdrHistogram does: 32 buckets per power
// of two, so any quantile is within 1/64 (1.6 %) of the true value, in a fixed 16 KiB whatever
// the number of samples. Each worker records into its own (no locks, no shared cache lines);
// the driver merges them at the end. Below 32 ns values are exact.
type histogram struct {
	counts [64 * subBuckets]uint64
	n      uint64
	sum    float64 // ns, for the mean
	max    int64
	min    int64
}

const (
	subBits    = 5
	subBuckets = 1 << subBits
)

func newHistogram() *histogram { return &histogram{min: math.MaxInt64} }

// bucket is the index of value v (ns, >= 0).
func bucket(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1 // v>>e is in [32, 64)
	return (e+1)*subBuckets + int(v>>e) - subBuckets
}

// bucketValue is the middle of bucket i.
func bucketValue(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	e := i/subBuckets - 1
	m := int64(i%subBuckets + subBuckets)
	lo, hi := m<<e, (m+1)<<e-1
	return lo + (hi-lo)/2
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucket(v)]++
	h.n++
	h.sum += float64(v)
	h.max = max(h.max, v)
	h.min = min(h.min, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
	h.min = min(h.min, o.min)
}

// quantile returns the value at quantile q (0..1), never above the largest value recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	if rank >= h.n {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketValue(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Latency is a histogram's summary in microseconds, as results carry it.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func (h *histogram) summary() *Latency {
	if h.n == 0 {
		return nil
	}
	us := func(d time.Duration) float64 { return round3(float64(d) / 1e3) }
	return &Latency{Count: h.n, Mean: round3(h.sum / float64(h.n) / 1e3),
		P50: us(h.quantile(0.50)), P90: us(h.quantile(0.90)), P99: us(h.quantile(0.99)),
		P999: us(h.quantile(0.999)), Max: us(time.Duration(h.max))}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
