package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/acl-es/acl/replay"
)

// logEvery is how often progress is logged when the output is not a terminal.
const logEvery = 2 * time.Second

// progress shows a rebuild's progress: a bar (messages, rate, ETA) on a terminal, structured
// log lines (log/slog) elsewhere, so that a rebuild run by a script or a service manager
// leaves a readable trace.
type progress struct {
	w    io.Writer
	what string
	bar  *progressbar.ProgressBar
	log  *slog.Logger
	last time.Time
	p    replay.Progress
}

func newProgress(w io.Writer, what string) *progress {
	pr := &progress{w: w, what: what}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pr.bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msgs"), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionShowElapsedTimeOnFinish())
		return pr
	}
	pr.log = slog.New(slog.NewTextHandler(w, nil))
	return pr
}

// report is the callback of replay.Rebuild.
func (pr *progress) report(p replay.Progress) {
	pr.p = p
	if pr.bar != nil {
		if pr.bar.GetMax64() != int64(p.Total) {
			pr.bar.ChangeMax64(int64(p.Total))
		}
		pr.bar.Set64(int64(p.Done)) //nolint:errcheck // a bar that fails to draw is no failure
		return
	}
	if time.Since(pr.last) < logEvery && p.Done < p.Total {
		return
	}
	pr.last = time.Now()
	pr.log.Info(pr.what, "done", p.Done, "total", p.Total, "events", p.Events,
		"msgs_per_s", int(p.Rate()), "eta", p.ETA().Round(time.Second), "elapsed", p.Elapsed.Round(time.Millisecond))
}

func (pr *progress) finish() {
	if pr.bar != nil {
		pr.bar.Finish()            //nolint:errcheck // as above
		io.WriteString(pr.w, "\n") //nolint:errcheck // as above
	}
}
