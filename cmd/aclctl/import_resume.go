package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
)

// importWitness is the command of an import stored last (the highest sequence answered with
// events), as the progress file keeps it: on a resume the server is asked, writing nothing
// (commands.Client.BatchLookup), whether it stored that command at that sequence. A server that
// did holds the stream up to it, so every line answered before the interruption, and the import
// may go on after them; one that did not (another server, or this one wiped or restored from an
// older backup since) never got some of the lines the progress file skips. Not the last line
// answered: a line whose append lost a race is carried out again alone when its answer comes,
// after the lines behind it in its batch (and, with --pipeline 2, the next batch's), so a
// stream cut between the two could hold the later line and not the earlier one. A command that
// changed nothing is never a witness: no server remembers it.
type importWitness struct {
	Tenant  string          `json:"tenant"`
	Command string          `json:"command"`
	Body    json.RawMessage `json:"body"`
	Line    int             `json:"line"`
	Seq     uint64          `json:"seq"`
	Events  []string        `json:"events"`
}

// witnessOf is w or the batch's command answered with events at the highest sequence, whichever
// was stored last.
func witnessOf(w *importWitness, b *pendingBatch, out []commands.BatchOutcome) *importWitness {
	for i, o := range out {
		if r := o.Result; o.Err == nil && len(r.Events) > 0 && (w == nil || r.Seq > w.Seq) {
			w = &importWitness{Tenant: b.tenant, Command: b.cmds[i].Command, Body: b.cmds[i].Body,
				Line: b.items[i].first, Seq: r.Seq, Events: r.Events}
		}
	}
	return w
}

// checkResume asks the server whether it holds the progress file's witness, and refuses to
// resume (exitAnswer, naming --restart) when it does not, or holds it at another sequence. It
// writes nothing, so a refused resume leaves the server and the progress file as they were. A
// progress file from before witnesses, or one whose commands all changed nothing, resumes
// unchecked, as does a resume against an acld from before lookups (it is said on stderr).
func checkResume(ctx context.Context, client *commands.Client, w *importWitness, stderr io.Writer) error {
	if w == nil {
		return nil
	}
	out, err := client.BatchLookup(ctx, w.Tenant, []commands.BatchCommand{{Command: w.Command, Body: w.Body}})
	if oldLookup(err) {
		fmt.Fprintf(stderr, "this acld cannot say whether it holds line %d (it is older than lookups): resuming unchecked\n", w.Line)
		return nil
	}
	if err == nil && len(out) != 1 {
		err = fmt.Errorf("%d answers to one lookup", len(out))
	}
	if err != nil {
		return importError(err, fmt.Sprintf("checking line %d before resuming", w.Line))
	}
	restart := "so it lacks lines this import would skip: run it with --restart (commands it already holds answer as before, and nothing is applied twice)"
	switch r := out[0].Result; {
	case aggregates.ErrorCode(out[0].Err) == aggregates.CodeNotFound:
		return &exitError{code: exitAnswer, err: fmt.Errorf(
			"line %d was answered before the interruption, but this server does not hold it (another server, or this one wiped or restored since), %s", w.Line, restart)}
	case out[0].Err != nil:
		return importError(out[0].Err, fmt.Sprintf("checking line %d before resuming", w.Line))
	case r.Seq != w.Seq || !slices.Equal(r.Events, w.Events):
		return &exitError{code: exitAnswer, err: fmt.Errorf(
			"line %d was answered at seq %d before the interruption; this server holds it at seq %d (another server, or its stream was rebuilt), %s", w.Line, w.Seq, r.Seq, restart)}
	}
	return nil
}

// oldLookup reports the refusal of a lookup by an acld from before lookups, which refuses the
// body's field lookup.
func oldLookup(err error) bool { return refusedField(err, "lookup") }
