package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
)

// printDryRun prints a dry run's answer: the events it would write, then two tables of its
// effects, the grants each principal would gain or lose and the records it would start or stop
// seeing (--json: the answer as acld sent it).
func (a *app) printDryRun(cmd aggregates.Command, res commands.Result) error {
	if a.json {
		return a.printJSON(map[string]any{"ok": true, "dry_run": true, "seq": res.Seq,
			"events": nonNil(res.Envelopes), "effects": nonNil(res.Effects)})
	}
	fmt.Fprintf(a.stdout, "dry run  %s  at seq %d: nothing written\n\nwould write %d event(s):\n", cmd.Name(), res.Seq, len(res.Envelopes))
	for _, e := range res.Envelopes {
		agg := e.Aggregate.Kind + ":" + e.Aggregate.ID
		if e.Aggregate.Type != "" {
			agg = e.Aggregate.Type + "/" + e.Aggregate.ID
		}
		fmt.Fprintf(a.stdout, "  %s  %s  %s\n", e.Type, agg, e.Data)
	}
	if len(res.Effects) == 0 {
		fmt.Fprintln(a.stdout, "\nno principal's access would change")
		return nil
	}
	fmt.Fprintf(a.stdout, "\naccess of %d principal(s) would change:\n\n", len(res.Effects))
	w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PRINCIPAL\tGRANT\tSCOPE\tSOURCE\tCHANGE")
	for _, e := range res.Effects {
		for _, g := range e.Granted {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\tgained\n", e.Principal, g.Permission, g.Scope, g.Source)
		}
		for _, g := range e.Revoked {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\tlost\n", e.Principal, g.Permission, g.Scope, g.Source)
		}
	}
	w.Flush()
	fmt.Fprintln(a.stdout)
	w = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PRINCIPAL\tTYPE\tGAINED\tLOST\tRECORDS")
	for _, e := range res.Effects {
		for _, typ := range slices.Sorted(maps.Keys(e.Visible)) {
			v := e.Visible[typ]
			var ids []string
			for _, id := range v.Gained {
				ids = append(ids, "+"+id)
			}
			for _, id := range v.Lost {
				ids = append(ids, "-"+id)
			}
			list := strings.Join(ids, " ")
			if v.Truncated {
				list += " ..."
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", e.Principal, typ, v.GainedCount, v.LostCount, list)
		}
	}
	return w.Flush()
}
