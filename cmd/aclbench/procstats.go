package main

import (
	"bufio"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Memory is the process's memory when a workload ends. In-process runs hold the whole server
// (embedded NATS with its JetStream caches, Pebble, the engine's caches, the command service's
// cache) plus the tool's own small state, so RSS is an upper bound of what acld would use.
type Memory struct {
	RSSMB     float64 `json:"rss_mb"`      // resident set now (VmRSS)
	RSSPeakMB float64 `json:"rss_peak_mb"` // the process's peak so far (VmHWM), loading included
	HeapMB    float64 `json:"heap_mb"`     // Go heap in use (HeapInuse)
	HeapLive  float64 `json:"heap_alloc_mb"`
	SysMB     float64 `json:"go_sys_mb"` // memory the Go runtime holds from the OS
	NumGC     uint32  `json:"num_gc"`
	// LoadAvg is the machine's 1-minute load average when the workload ended: above the number
	// of cores, other processes shared the CPU with the measurement.
	LoadAvg float64 `json:"load_avg"`
}

func readMemory() Memory {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := Memory{HeapMB: mb(ms.HeapInuse), HeapLive: mb(ms.HeapAlloc), SysMB: mb(ms.Sys), NumGC: ms.NumGC}
	m.RSSMB, m.RSSPeakMB = procStatusMB("VmRSS"), procStatusMB("VmHWM")
	m.LoadAvg = loadAvg()
	return m
}

func mb(b uint64) float64 { return round3(float64(b) / (1 << 20)) }

// procStatusMB reads a "kB" line of /proc/self/status (0 where there is no /proc).
func procStatusMB(key string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0
		}
		return round3(kb / 1024)
	}
	return 0
}

// loadAvg is the 1-minute load average (0 where there is no /proc).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// serverMemory reads a running acld's memory from its Prometheus /metrics (the process and Go
// collectors): against a remote server the tool's own memory would say nothing about it.
func serverMemory(httpURL string) (Memory, bool) {
	resp, err := http.Get(strings.TrimSuffix(httpURL, "/") + "/metrics")
	if err != nil {
		return Memory{}, false
	}
	defer resp.Body.Close()
	var m Memory
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			m.RSSMB, found = mb(uint64(v)), true
		case "go_memstats_heap_inuse_bytes":
			m.HeapMB = mb(uint64(v))
		case "go_memstats_heap_alloc_bytes":
			m.HeapLive = mb(uint64(v))
		case "go_memstats_sys_bytes":
			m.SysMB = mb(uint64(v))
		}
	}
	m.LoadAvg = loadAvg()
	return m, found
}

// cpuTicks is the CPU time this process has used, in clock ticks (1/100 s), from
// /proc/self/stat; ok is false where there is no /proc.
func cpuTicks() (int64, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: count fields after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	k, err2 := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	return u + k, err1 == nil && err2 == nil
}
