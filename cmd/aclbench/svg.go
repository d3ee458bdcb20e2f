package main

import (
	"fmt"
	"math"
	"strings"
)

// plotSVG draws two log-log panels against records: the p99 latency of each measurement, and
// its cost per operation (1/throughput). A line that climbs with the records is a cost that
// grows with the data set; a flat one does not.
func plotSVG(rs []Result) string {
	ss := seriesOf(rs)
	const w = 1100
	h := 470 + 16*((len(ss)+2)/3)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	p99 := func(r Result) float64 { return latencyOr(r).P99 }
	cost := func(r Result) float64 {
		if r.Throughput <= 0 {
			return 0
		}
		return 1e6 / r.Throughput
	}
	panel(&b, ss, 60, 40, 420, 380, "p99 latency (µs)", p99)
	panel(&b, ss, 580, 40, 420, 380, "cost per operation (µs = 1/throughput)", cost)
	legend(&b, ss, 60, 450)
	b.WriteString("</svg>\n")
	return b.String()
}

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
	"#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"}

// panel draws one log-log chart at (x, y) of size pw x ph.
func panel(b *strings.Builder, ss []series, x, y, pw, ph float64, title string, val func(Result) float64) {
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.points {
			if v := val(p); v > 0 && p.Records > 0 {
				minX, maxX = math.Min(minX, float64(p.Records)), math.Max(maxX, float64(p.Records))
				minY, maxY = math.Min(minY, v), math.Max(maxY, v)
			}
		}
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="13">%s</text>`+"\n", x, y-12, title)
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", x, y, pw, ph)
	if math.IsInf(minX, 1) {
		return
	}
	lx0, lx1 := math.Floor(math.Log10(minX)), math.Ceil(math.Log10(maxX))
	ly0, ly1 := math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
	if lx1 == lx0 {
		lx1++
	}
	if ly1 == ly0 {
		ly1++
	}
	px := func(v float64) float64 { return x + (math.Log10(v)-lx0)/(lx1-lx0)*pw }
	py := func(v float64) float64 { return y + ph - (math.Log10(v)-ly0)/(ly1-ly0)*ph }
	for d := lx0; d <= lx1; d++ {
		gx := x + (d-lx0)/(lx1-lx0)*pw
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#eee"/>`+"\n", gx, y, gx, y+ph)
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">10^%.0f</text>`+"\n", gx, y+ph+14, d)
	}
	for d := ly0; d <= ly1; d++ {
		gy := y + ph - (d-ly0)/(ly1-ly0)*ph
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`+"\n", x, gy, x+pw, gy)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", x-4, gy+4, fmtPow(d))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">records</text>`+"\n", x+pw/2, y+ph+28)
	for i, s := range ss {
		var pts []string
		for _, p := range s.points {
			if v := val(p); v > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(float64(p.Records)), py(v)))
			}
		}
		if len(pts) == 0 {
			continue
		}
		c := palette[i%len(palette)]
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		for _, pt := range pts {
			xy := strings.Split(pt, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], c)
		}
	}
}

func fmtPow(d float64) string {
	v := math.Pow(10, d)
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.0fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fms", v/1e3)
	case v >= 1:
		return fmt.Sprintf("%.0fµs", v)
	}
	return fmt.Sprintf("%gµs", v)
}

// legend lists the series in columns under the panels.
func legend(b *strings.Builder, ss []series, x, y float64) {
	for i, s := range ss {
		cx := x + float64(i%3)*340
		cy := y + float64(i/3)*16
		c := palette[i%len(palette)]
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/>`+"\n", cx, cy-9, c)
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", cx+14, cy, escapeXML(s.key))
	}
}

func escapeXML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
