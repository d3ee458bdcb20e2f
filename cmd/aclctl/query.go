package main

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// moment flags shared by every query: --as-of and --min-seq.
type momentFlags struct {
	asOf   string
	minSeq uint64
}

func (m *momentFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&m.asOf, "as-of", "", "answer as the system stood then: a stream sequence or an RFC 3339 time")
	c.Flags().Uint64Var(&m.minSeq, "min-seq", 0, "wait until acld has applied this sequence (a command's seq)")
}

// apply adds the flags to a query body (the generic query, whose body is the user's).
func (m *momentFlags) apply(body map[string]any) error {
	if m.asOf != "" {
		at, err := parseMoment("--as-of", m.asOf)
		if err != nil {
			return err
		}
		body["as_of"] = at
	}
	if m.minSeq > 0 {
		body["min_seq"] = m.minSeq
	}
	return nil
}

// options are the flags as the client's query options.
func (m *momentFlags) options() ([]commands.QueryOption, error) {
	var opts []commands.QueryOption
	if m.asOf != "" {
		at, err := parseMoment("--as-of", m.asOf)
		if err != nil {
			return nil, err
		}
		opts = append(opts, commands.AsOf(at))
	}
	return append(opts, commands.MinSeq(m.minSeq)), nil
}

// parseMoment reads a moment flag: a sequence or an RFC 3339 time.
func parseMoment(flag, s string) (aggregates.Moment, error) {
	m, err := aggregates.ParseMoment(s)
	if err != nil {
		return aggregates.Moment{}, usagef("%s: %v", flag, err)
	}
	return m, nil
}

// ask runs one typed query of the client with the moment flags; errors are exits.
func ask[T any](ctx context.Context, a *app, tenant string, m *momentFlags, query func(*commands.Client, []commands.QueryOption) (T, error)) (T, error) {
	var zero T
	if !events.ValidToken(tenant) {
		return zero, usagef("tenant %q: want 1 to 64 of A-Z a-z 0-9 _ -", tenant)
	}
	opts, err := m.options()
	if err != nil {
		return zero, err
	}
	c, err := a.client()
	if err != nil {
		return zero, err
	}
	ans, err := query(c, opts)
	if err != nil {
		return zero, a.clientError(err)
	}
	return ans, nil
}

func (a *app) queryCommand() *cobra.Command {
	var m momentFlags
	c := &cobra.Command{
		Use:   "query <tenant> <query> ['<json body>']",
		Short: "Run any query (check, visible, permissions, principals, recipients, history, diff)",
		Long: `Sends a query to acl.queries.<tenant>.<query> and prints the JSON answer as it is (SPEC
section 7). --as-of and --min-seq are added to the body.`,
		Example: `  aclctl query acme check '{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"}}'
  aclctl query acme permissions '{"principal":"bob"}' --as-of 120`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			body := map[string]any{}
			if len(args) == 3 {
				if err := json.Unmarshal([]byte(args[2]), &body); err != nil {
					return usagef("body is not a JSON object: %v", err)
				}
			}
			if err := m.apply(body); err != nil {
				return err
			}
			raw, err := json.Marshal(body)
			if err != nil {
				return err
			}
			data, err := ask(cc.Context(), a, args[0], &momentFlags{}, func(c *commands.Client, _ []commands.QueryOption) ([]byte, error) {
				return c.QueryRaw(cc.Context(), args[0], args[1], raw)
			})
			if err != nil {
				return err
			}
			return a.printRaw(data)
		},
	}
	m.add(c)
	return c
}

// recordArg reads "<type>/<id>".
func recordArg(s string) (events.RecordRef, error) {
	typ, id, ok := strings.Cut(s, "/")
	if !ok || !events.ValidToken(typ) || !events.ValidToken(id) {
		return events.RecordRef{}, usagef("record %q: want <type>/<id>, such as invoice/inv-1", s)
	}
	return events.RecordRef{Type: typ, ID: id}, nil
}
