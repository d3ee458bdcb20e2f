package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
)

// subjectFlags name whose history: --principal or --record.
type subjectFlags struct {
	principal, record, from, to string
}

func (s *subjectFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&s.principal, "principal", "", "the principal whose history (what it can do)")
	c.Flags().StringVar(&s.record, "record", "", "the record whose history (who can see it), as <type>/<id>")
	c.Flags().StringVar(&s.from, "from", "", "first moment shown (a sequence, or a time: the last event at or before it)")
	c.Flags().StringVar(&s.to, "to", "", "last moment shown (default: now)")
}

// request is the history query for these flags.
func (s *subjectFlags) request() (aggregates.HistoryRequest, error) {
	var r aggregates.HistoryRequest
	switch {
	case (s.principal == "") == (s.record == ""):
		return r, usagef("give exactly one of --principal and --record")
	case s.principal != "":
		r.Principal = s.principal
	default:
		rec, err := recordArg(s.record)
		if err != nil {
			return r, err
		}
		r.Record = &rec
	}
	for _, f := range []struct {
		name, v string
		to      **aggregates.Moment
	}{{"from", s.from, &r.From}, {"to", s.to, &r.To}} {
		if f.v != "" {
			m, err := parseMoment("--"+f.name, f.v)
			if err != nil {
				return r, err
			}
			*f.to = &m
		}
	}
	return r, nil
}

// pages calls fn with every page of a history, from the cursor on; with all false, the first
// page only. It returns the next cursor ("" at the end). The pages after the first are bounded
// by the first's sequence, so that they describe the same moment.
func (a *app) pages(ctx context.Context, tenant string, r aggregates.HistoryRequest, m *momentFlags, all bool, fn func(aggregates.HistoryAnswer) error) (string, error) {
	for {
		ans, err := ask(ctx, a, tenant, m, func(c *commands.Client, o []commands.QueryOption) (aggregates.HistoryAnswer, error) {
			return c.HistoryPage(ctx, tenant, r, o...)
		})
		if err != nil {
			return "", err
		}
		if err := fn(ans); err != nil {
			return "", err
		}
		if !all || ans.NextCursor == "" {
			return ans.NextCursor, nil
		}
		r.Cursor = ans.NextCursor
		if r.To == nil {
			r.To = &aggregates.Moment{Seq: ans.Seq}
		}
	}
}

func (a *app) historyCommand() *cobra.Command {
	var (
		s      subjectFlags
		m      momentFlags
		limit  int
		cursor string
		all    bool
	)
	c := &cobra.Command{
		Use:   "history <tenant> (--principal <id> | --record <type>/<id>)",
		Short: "Every event that changed what a principal can do or who can see a record",
		Long: `Lists, in stream order, every event that changed what a principal can do (its own events,
changes of roles it holds, records assigned to or unassigned from it, policy and feature
changes) or who can see a record (its own events, reassignments of records it links to, policy
and feature changes), with actor, the caller identity it came through (VIA), time, command id and the reason it is there (WHY).`,
		Example: `  aclctl history acme --principal bob
  aclctl history acme --record invoice/inv-1 --from 2026-03-01T00:00:00Z --to 2026-04-01T00:00:00Z --all`,
		Args: cobra.ExactArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			r, err := s.request()
			if err != nil {
				return err
			}
			r.Limit, r.Cursor = limit, cursor
			var evs []aggregates.HistoryEvent
			var seq uint64
			next, err := a.pages(cc.Context(), args[0], r, &m, all, func(ans aggregates.HistoryAnswer) error {
				evs, seq = append(evs, ans.Events...), ans.Seq
				return nil
			})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(aggregates.HistoryAnswer{Events: nonNil(evs), NextCursor: next, Seq: seq})
			}
			printHistory(a.stdout, evs)
			if next != "" {
				fmt.Fprintf(a.stderr, "more: --cursor %s (or --all)\n", next)
			}
			return nil
		},
	}
	s.add(c)
	m.add(c)
	c.Flags().IntVar(&limit, "limit", 0, "events per page (default 100, at most 1000)")
	c.Flags().StringVar(&cursor, "cursor", "", "go on after this sequence (the previous page's next cursor)")
	c.Flags().BoolVar(&all, "all", false, "follow every page")
	return c
}

// printHistory prints events as a table.
func printHistory(w io.Writer, evs []aggregates.HistoryEvent) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tAGGREGATE\tACTOR\tVIA\tCOMMAND\tWHY\tDATA")
	for _, e := range evs {
		agg := e.Aggregate.Kind + ":" + e.Aggregate.ID
		if e.Aggregate.Type != "" {
			agg = e.Aggregate.Type + "/" + e.Aggregate.ID
		}
		data := string(e.Data)
		if len(data) > 60 {
			data = data[:57] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Type, agg,
			e.Actor, dash(e.Via), e.CommandID, dash(e.Why), data)
	}
	tw.Flush()
}

func (a *app) diffCommand() *cobra.Command {
	var (
		m        momentFlags
		from, to string
	)
	c := &cobra.Command{
		Use:   "diff <tenant> <principal> --from <moment> --to <moment>",
		Short: "What changed in a principal's access between two moments, and why",
		Example: `  aclctl diff acme bob --from 2026-03-01T00:00:00Z --to 2026-04-01T00:00:00Z
  aclctl diff acme bob --from 100 --to 250 --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			if from == "" || to == "" {
				return usagef("--from and --to are required")
			}
			f, err := parseMoment("--from", from)
			if err != nil {
				return err
			}
			t, err := parseMoment("--to", to)
			if err != nil {
				return err
			}
			ask := func(c *commands.Client, o []commands.QueryOption) (aggregates.DiffAnswer, error) {
				return c.Diff(cc.Context(), args[0], aggregates.DiffRequest{Principal: args[1], From: &f, To: &t}, o...)
			}
			return show(cc, a, args[0], &m, ask, func(ans aggregates.DiffAnswer) error {
				a.printDiff(ans)
				return nil
			})
		},
	}
	m.add(c)
	c.Flags().StringVar(&from, "from", "", "the earlier moment (a sequence or an RFC 3339 time)")
	c.Flags().StringVar(&to, "to", "", "the later moment")
	return c
}

func (a *app) printDiff(ans aggregates.DiffAnswer) {
	fmt.Fprintf(a.stdout, "from seq %d to seq %d\n\nADDED\n", ans.FromSeq, ans.Seq)
	a.printGrants(ans.Added)
	fmt.Fprintln(a.stdout, "\nREMOVED")
	a.printGrants(ans.Removed)
	fmt.Fprintln(a.stdout, "\nVISIBLE RECORDS")
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tFROM\tTO\tGAINED\tLOST")
	for _, v := range ans.Visible {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", v.Type, v.From, v.To, v.GainedCount, v.LostCount)
	}
	tw.Flush()
	for _, v := range ans.Visible {
		printIDs(a.stdout, v.Type+" gained", v.Gained, v.GainedCount)
		printIDs(a.stdout, v.Type+" lost", v.Lost, v.LostCount)
	}
	fmt.Fprintln(a.stdout, "\nCAUSES")
	printHistory(a.stdout, ans.Events)
	if ans.EventsNextCursor != "" {
		fmt.Fprintf(a.stderr, "more causes: aclctl history --principal ... --cursor %s --to %s\n",
			ans.EventsNextCursor, strconv.FormatUint(ans.Seq, 10))
	}
}

// printIDs prints one line of record ids after a label, saying how many more there were when
// the answer listed only the first ones; nothing when there are none.
func printIDs(w io.Writer, label string, ids []string, count int) {
	if count == 0 {
		return
	}
	more := ""
	if count > len(ids) {
		more = fmt.Sprintf(" ... and %d more", count-len(ids))
	}
	fmt.Fprintf(w, "%s (%d): %s%s\n", label, count, strings.Join(ids, " "), more)
}
