package commands

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// SubjectPrefix is the root of command subjects: acl.commands.<tenant>.<CommandName>.
const SubjectPrefix = "acl.commands"

// QueueGroup is the queue group every command service instance joins, so that each command is
// served by exactly one of them.
const QueueGroup = "acld"

// Subject is the subject of a command for a tenant.
func Subject(tenant, name string) string { return SubjectPrefix + "." + tenant + "." + name }

// Result is the answer to an accepted command: Seq is the stream sequence of the last message
// written (a consistency token for queries' min_seq), Events the ids of the events written. A
// retried command answers the Seq and Events stored the first time; a command that changed
// nothing answers the sequence of its aggregate and no events.
type Result struct {
	Seq    uint64   `json:"seq"`
	Events []string `json:"events"`
	// A dry run's answer (SPEC section 8): DryRun set, Envelopes the events it would write
	// (its "events" on the wire), Effects what they would do to each principal's access, Seq
	// the read model's sequence the effects were evaluated at (at or after the stream's last
	// when the dry run was decided).
	DryRun    bool                `json:"dry_run,omitempty"`
	Envelopes []events.Envelope   `json:"-"`
	Effects   []aggregates.Effect `json:"effects,omitempty"`
}

// dryAnswer is the JSON of a dry run's answer.
type dryAnswer struct {
	OK      bool                `json:"ok"`
	DryRun  bool                `json:"dry_run"`
	Seq     uint64              `json:"seq"`
	Events  []events.Envelope   `json:"events"`
	Effects []aggregates.Effect `json:"effects"`
}

// WireError is the error object of an answer (SPEC section 6).
type WireError struct {
	Code    aggregates.Code `json:"code"`
	Message string          `json:"message"`
}

// answer is the JSON of an answer: {"ok":true,"seq":N,"events":[..]} or
// {"ok":false,"error":{"code":..,"message":..}}. Decoding accepts both.
type answer struct {
	OK     bool       `json:"ok"`
	Seq    uint64     `json:"seq,omitempty"`
	Events []string   `json:"events,omitempty"`
	Error  *WireError `json:"error,omitempty"`
}

// okAnswer always carries seq and events ([] when empty, never null).
type okAnswer struct {
	OK     bool     `json:"ok"`
	Seq    uint64   `json:"seq"`
	Events []string `json:"events"`
}

func encodeResult(r Result) []byte {
	if r.DryRun {
		a := dryAnswer{OK: true, DryRun: true, Seq: r.Seq, Events: r.Envelopes, Effects: r.Effects}
		if a.Events == nil {
			a.Events = []events.Envelope{}
		}
		if a.Effects == nil {
			a.Effects = []aggregates.Effect{}
		}
		b, err := json.Marshal(a)
		if err != nil {
			return encodeError(err)
		}
		return b
	}
	if b, ok := appendOK(r); ok {
		return b
	}
	if r.Events == nil {
		r.Events = []string{}
	}
	b, _ := json.Marshal(okAnswer{OK: true, Seq: r.Seq, Events: r.Events}) // cannot fail: plain types
	return b
}

// appendOK writes the answer json.Marshal(okAnswer) writes, byte for byte, when every event id
// is a string Marshal writes as it is (an event id is a UUID): every command answers one, and
// Marshal's reflection was most of encoding it. ok is false for anything else, left to Marshal.
func appendOK(r Result) ([]byte, bool) {
	n := len(`{"ok":true,"seq":,"events":[]}`) + 20
	for _, id := range r.Events {
		if !events.PlainJSON(id) {
			return nil, false
		}
		n += len(id) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, `{"ok":true,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"events":[`...)
	for i, id := range r.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, '"')
	}
	return append(b, "]}"...), true
}

// encodeError answers err with its code; an error without one is internal, and its text is not
// sent (it may name internals), only that it happened.
func encodeError(err error) []byte {
	we := wireError(err)
	b, _ := json.Marshal(answer{OK: false, Error: &we}) // cannot fail: plain types
	return b
}

// wireError is the error object of an answer.
func wireError(err error) WireError {
	we := WireError{Code: aggregates.ErrorCode(err), Message: "internal error; the service log has the cause"}
	if e, ok := asError(err); ok {
		we.Message = e.Message
	}
	return we
}

// decodeAnswer reads an answer; an error answer becomes an *aggregates.Error named op.
func decodeAnswer(op string, data []byte) (Result, error) {
	if r, n, ok := scanOK(data, 0); ok && n == len(data) {
		return r, nil
	}
	return decodeAnswerJSON(op, data)
}

// decodeAnswerJSON is decodeAnswer by encoding/json, for any answer.
func decodeAnswerJSON(op string, data []byte) (Result, error) {
	var dry struct {
		DryRun bool `json:"dry_run"`
	}
	if json.Unmarshal(data, &dry); dry.DryRun {
		var d dryAnswer
		if err := json.Unmarshal(data, &d); err != nil {
			return Result{}, fmt.Errorf("commands: %s: malformed dry run answer: %w", op, err)
		}
		return Result{DryRun: true, Seq: d.Seq, Events: []string{}, Envelopes: d.Events, Effects: d.Effects}, nil
	}
	var a answer
	if err := json.Unmarshal(data, &a); err != nil {
		return Result{}, fmt.Errorf("commands: %s: malformed answer %.100q: %w", op, data, err)
	}
	if !a.OK {
		if a.Error == nil {
			return Result{}, fmt.Errorf("commands: %s: answer without ok or error: %.100q", op, data)
		}
		return Result{}, &aggregates.Error{Code: a.Error.Code, Op: op, Message: a.Error.Message}
	}

	if a.Events == nil {
		a.Events = []string{}
	}
	return Result{Seq: a.Seq, Events: a.Events}, nil
}

// scanOK reads the answer of a command carried out, as the service writes it (appendOK, or
// json.Marshal of okAnswer: the same bytes), from data[i:]: {"ok":true,"seq":N,"events":[..]}
// with event ids of printable ASCII without escapes. It returns the result and the index after
// the answer; ok is false for anything else (an error, a dry run, another spelling), which
// encoding/json then reads, as it reads these: a client of an import or a benchmark decoded
// every answer twice with it, for half of its CPU.
func scanOK(data []byte, i int) (r Result, end int, ok bool) {
	const head, mid = `{"ok":true,"seq":`, `,"events":[`
	if !hasAt(data, i, head) {
		return Result{}, 0, false
	}
	i += len(head)
	start := i
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		d := uint64(data[i] - '0')
		if r.Seq > (math.MaxUint64-d)/10 {
			return Result{}, 0, false
		}
		r.Seq = r.Seq*10 + d
		i++
	}
	if i == start || (i-start > 1 && data[start] == '0') || !hasAt(data, i, mid) {
		return Result{}, 0, false
	}
	i += len(mid)
	r.Events = []string{}
	for i < len(data) && data[i] != ']' {
		if len(r.Events) > 0 {
			if data[i] != ',' {
				return Result{}, 0, false
			}
			i++
		}
		if i >= len(data) || data[i] != '"' {
			return Result{}, 0, false
		}
		i++
		s := i
		for i < len(data) && data[i] != '"' {
			if c := data[i]; c < 0x20 || c > 0x7e || c == '\\' {
				return Result{}, 0, false
			}
			i++
		}
		if i >= len(data) {
			return Result{}, 0, false
		}
		r.Events = append(r.Events, string(data[s:i]))
		i++
	}
	if !hasAt(data, i, "]}") {
		return Result{}, 0, false
	}
	return r, i + 2, true
}

func hasAt(data []byte, i int, s string) bool {
	return len(data)-i >= len(s) && string(data[i:i+len(s)]) == s
}
