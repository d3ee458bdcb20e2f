package replay

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/acl-es/acl/events"
)

// The index's states are JSON (audit_encode.go writes the record states), and reading one with
// encoding/json's reflection cost some 7 µs: a sixth of the state reads' CPU in the commands
// workload, and most of the cache's filling (Audit.warmCache). decodeState reads the bytes the
// index's encoders write (appendRecordState, and json.Marshal of a principal state) by a scanner
// that gives up on anything else (another field order, a string with an escape or a byte
// outside printable ASCII), and encoding/json decodes those: both give the same value (tested).

// decodeState decodes the JSON state v into s, a *tenantState, *principalState or *recordState.
func decodeState(v []byte, s any) error {
	switch x := s.(type) {
	case *recordState:
		if fastRecordState(string(v), x) {
			return nil
		}
		*x = recordState{}
	case *principalState:
		if fastPrincipalState(string(v), x) {
			return nil
		}
		*x = principalState{}
	}
	return json.Unmarshal(v, s)
}

// stateScanner reads a state's JSON in the one layout its encoder writes; ok turns false at the
// first byte that differs, and stays false.
type stateScanner struct {
	s  string
	ok bool
}

// lit reads l when the input continues with it.
func (p *stateScanner) lit(l string) bool {
	if p.ok && strings.HasPrefix(p.s, l) {
		p.s = p.s[len(l):]
		return true
	}
	return false
}

// must reads l, or fails.
func (p *stateScanner) must(l string) {
	if !p.lit(l) {
		p.ok = false
	}
}

// str reads a string without escapes, of printable ASCII.
func (p *stateScanner) str() string {
	if !p.lit(`"`) {
		p.ok = false
		return ""
	}
	for i := 0; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == '"':
			out := p.s[:i]
			p.s = p.s[i+1:]
			return out
		case c < 0x20 || c > 0x7e || c == '\\':
			p.ok = false
			return ""
		}
	}
	p.ok = false
	return ""
}

// digits reads an unsigned integer as JSON writes it: no sign, no leading zero.
func (p *stateScanner) digits() uint64 {
	i := 0
	for i < len(p.s) && p.s[i] >= '0' && p.s[i] <= '9' {
		i++
	}
	if !p.ok || i == 0 || (i > 1 && p.s[0] == '0') {
		p.ok = false
		return 0
	}
	n, err := strconv.ParseUint(p.s[:i], 10, 64)
	if err != nil {
		p.ok = false
		return 0
	}
	p.s = p.s[i:]
	return n
}

// list reads null (nil, false) or a JSON array, calling item for each element; an empty array
// is empty, not nil.
func (p *stateScanner) list(item func()) (isNull bool) {
	if p.lit("null") {
		return true
	}
	p.must("[")
	if p.lit("]") {
		return false
	}
	for p.ok {
		item()
		if !p.lit(",") {
			break
		}
	}
	p.must("]")
	return false
}

func fastRecordState(v string, r *recordState) bool {
	p := &stateScanner{s: v, ok: true}
	*r = recordState{}
	p.must(`{"exists":`)
	switch {
	case p.lit("true"):
		r.Exists = true
	case p.lit("false"):
	default:
		p.ok = false
	}
	if p.lit(`,"client":`) {
		r.Client = p.str()
	}
	if p.lit(`,"owner":`) {
		r.Owner = p.str()
	}
	p.must(`,"assignees":`)
	r.Assignees = []events.Assignee{}
	if p.list(func() {
		p.must(`{"principal":`)
		a := events.Assignee{Principal: p.str()}
		p.must(`,"relation":`)
		a.Relation = p.str()
		p.must("}")
		r.Assignees = append(r.Assignees, a)
	}) {
		r.Assignees = nil
	}
	p.must(`,"links":`)
	r.Links = []events.RecordRef{}
	if p.list(func() {
		p.must(`{"type":`)
		l := events.RecordRef{Type: p.str()}
		p.must(`,"id":`)
		l.ID = p.str()
		p.must("}")
		r.Links = append(r.Links, l)
	}) {
		r.Links = nil
	}
	if p.lit(`,"linked_by":`) {
		neg := p.lit("-")
		n := p.digits()
		if n > 1<<53 {
			p.ok = false
		}
		r.LinkedBy = int(n)
		if neg {
			r.LinkedBy = -r.LinkedBy
		}
	}
	p.must(`,"first":`)
	r.First = p.digits()
	if p.lit(`,"removed":`) {
		r.Removed = p.digits()
	}
	p.must("}")
	return p.ok && p.s == ""
}

func fastPrincipalState(v string, s *principalState) bool {
	p := &stateScanner{s: v, ok: true}
	*s = principalState{}
	p.must(`{"kind":`)
	s.Kind = p.str()
	p.must(`,"roles":`)
	s.Roles = []string{}
	if p.list(func() { s.Roles = append(s.Roles, p.str()) }) {
		s.Roles = nil
	}
	p.must(`,"first":`)
	s.First = p.digits()
	if p.lit(`,"removed":`) {
		s.Removed = p.digits()
	}
	p.must("}")
	return p.ok && p.s == ""
}
