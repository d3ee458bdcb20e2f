package main

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics exports, at each scrape, where acld's Pebble stores keep memory and disk and
// how much they write: their memtables and block cache live outside the Go heap, so neither
// a heap profile nor go_memstats shows them, yet they are a large part of the RSS.
type storeMetrics struct {
	stores []namedStore
	cache  *pebble.Cache
}

// namedStore reads one store's figures; nil while it is not open.
type namedStore struct {
	name    string
	metrics func() *pebble.Metrics
}

var (
	storeMemtable = prometheus.NewDesc("acl_store_memtable_bytes",
		"Memory of the store's memtables, in use and awaiting release (outside the Go heap).", []string{"store"}, nil)
	storeDisk = prometheus.NewDesc("acl_store_disk_bytes",
		"Disk the store takes: tables, write-ahead log, manifests.", []string{"store"}, nil)
	storeFlushed = prometheus.NewDesc("acl_store_flushed_bytes_total",
		"Bytes of tables the store wrote by flushing memtables.", []string{"store"}, nil)
	storeCompacted = prometheus.NewDesc("acl_store_compacted_bytes_total",
		"Bytes of tables the store wrote by compactions (its write amplification beyond the flushes).", []string{"store"}, nil)
	storeReadAmp = prometheus.NewDesc("acl_store_read_amplification",
		"Sorted runs a read may visit: level-0 sublevels plus non-empty lower levels.", []string{"store"}, nil)
	storeBlockRead = prometheus.NewDesc("acl_store_block_read_bytes_total",
		"Bytes of table blocks (data, index, filter) the store's reads loaded, by reader (pebble-get: point reads, pebble-compaction, unknown: iterators) and whether the shared cache held them (miss: read from the file and decompressed).", []string{"store", "reader", "cache"}, nil)
	storeCompactions = prometheus.NewDesc("acl_store_compactions_total",
		"Compactions the store ran.", []string{"store"}, nil)
	storeFlushes = prometheus.NewDesc("acl_store_flushes_total",
		"Memtable flushes the store ran.", []string{"store"}, nil)
	cacheBytes = prometheus.NewDesc("acl_block_cache_bytes",
		"Bytes held by the block cache all of acld's stores share (--cache-mb bounds it; outside the Go heap).", nil, nil)
	cacheHits = prometheus.NewDesc("acl_block_cache_hits_total",
		"Block reads the shared cache answered.", nil, nil)
	cacheMisses = prometheus.NewDesc("acl_block_cache_misses_total",
		"Block reads the shared cache missed (read from the file and decompressed).", nil, nil)
	cHeapBytes = prometheus.NewDesc("acl_c_heap_bytes",
		"The C heap, where Pebble allocates its block cache, memtables and buffers (outside the Go heap): bytes in_use, and free in the C library's arenas (resident until returned when idle, --idle-trim; pages already returned still count).", []string{"state"}, nil)
)

// Describe implements prometheus.Collector.
func (s *storeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storeMemtable, storeDisk, storeFlushed, storeCompacted, storeReadAmp,
		storeBlockRead, storeCompactions, storeFlushes, cacheBytes, cacheHits, cacheMisses, cHeapBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *storeMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, st := range s.stores {
		m := st.metrics()
		if m == nil {
			continue
		}
		total := m.Total()
		ch <- prometheus.MustNewConstMetric(storeMemtable, prometheus.GaugeValue, float64(m.MemTable.Size+m.MemTable.ZombieSize), st.name)
		ch <- prometheus.MustNewConstMetric(storeDisk, prometheus.GaugeValue, float64(m.DiskSpaceUsage()), st.name)
		ch <- prometheus.MustNewConstMetric(storeFlushed, prometheus.CounterValue, float64(total.TableBytesFlushed), st.name)
		ch <- prometheus.MustNewConstMetric(storeCompacted, prometheus.CounterValue, float64(total.TableBytesCompacted), st.name)
		ch <- prometheus.MustNewConstMetric(storeReadAmp, prometheus.GaugeValue, float64(m.ReadAmp()), st.name)
		ch <- prometheus.MustNewConstMetric(storeCompactions, prometheus.CounterValue, float64(m.Compact.Count), st.name)
		ch <- prometheus.MustNewConstMetric(storeFlushes, prometheus.CounterValue, float64(m.Flush.Count), st.name)
		for _, c := range m.CategoryStats {
			s := c.CategoryStats
			reader := c.Category.String()
			ch <- prometheus.MustNewConstMetric(storeBlockRead, prometheus.CounterValue, float64(s.BlockBytesInCache), st.name, reader, "hit")
			ch <- prometheus.MustNewConstMetric(storeBlockRead, prometheus.CounterValue, float64(s.BlockBytes-s.BlockBytesInCache), st.name, reader, "miss")
		}
	}
	if s.cache != nil {
		c := s.cache.Metrics()
		ch <- prometheus.MustNewConstMetric(cacheBytes, prometheus.GaugeValue, float64(c.Size))
		ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(c.Hits))
		ch <- prometheus.MustNewConstMetric(cacheMisses, prometheus.CounterValue, float64(c.Misses))
	}
	if used, free, ok := cHeap(); ok {
		ch <- prometheus.MustNewConstMetric(cHeapBytes, prometheus.GaugeValue, float64(used), "in_use")
		ch <- prometheus.MustNewConstMetric(cHeapBytes, prometheus.GaugeValue, float64(free), "free")
	}
}
