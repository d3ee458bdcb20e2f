package projections

import (
	"encoding/json"
	"strconv"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// The check query is most of the traffic, and reflection-based JSON both ways cost more CPU
// than the check itself. parseCheck reads the bodies clients send in practice and
// appendCheckAnswer writes the answer; anything else in a body (as_of, escapes in strings,
// non-ASCII, unknown or repeated fields, another spelling of a name) goes the general way, so
// answers and errors stay those of encoding/json.

// parseCheck reads a check body made only of "principal", "permission", "record" ({"type",
// "id"}) and "min_seq" (a plain integer), each at most once, with strings of printable ASCII
// and no escapes. ok is false for any other body: the general decoder then answers it.
func parseCheck(b []byte) (q CheckQuery, minSeq uint64, ok bool) {
	s := jscan{b: b}
	if !s.lit('{') {
		return q, 0, false
	}
	var seen uint8
	if !s.lit('}') {
		for {
			k, good := s.str()
			if !good || !s.lit(':') {
				return q, 0, false
			}
			var bit uint8
			switch string(k) {
			case "principal":
				bit = 1
				v, good := s.str()
				if !good {
					return q, 0, false
				}
				q.Principal = string(v)
			case "permission":
				bit = 2
				v, good := s.str()
				if !good {
					return q, 0, false
				}
				q.Permission = string(v)
			case "record":
				bit = 4
				r, good := s.record()
				if !good {
					return q, 0, false
				}
				q.Record = r
			case "min_seq":
				bit = 8
				n, good := s.uint()
				if !good {
					return q, 0, false
				}
				minSeq = n
			default:
				return q, 0, false
			}
			if seen&bit != 0 {
				return q, 0, false
			}
			seen |= bit
			if s.lit(',') {
				continue
			}
			if s.lit('}') {
				break
			}
			return q, 0, false
		}
	}
	s.ws()
	return q, minSeq, s.i == len(b)
}

// jscan reads the few JSON shapes parseCheck accepts.
type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// lit consumes c after optional whitespace.
func (s *jscan) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes; the bytes alias the body.
func (s *jscan) str() ([]byte, bool) {
	if !s.lit('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// uint reads 0 or a number of up to 19 digits without a leading zero (no overflow of uint64).
func (s *jscan) uint() (uint64, bool) {
	s.ws()
	start := s.i
	var n uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		n = n*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	d := s.i - start
	if d == 0 || d > 19 || (d > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

// record reads {"type":..,"id":..}, each at most once.
func (s *jscan) record() (*events.RecordRef, bool) {
	if !s.lit('{') {
		return nil, false
	}
	r := &events.RecordRef{}
	if s.lit('}') {
		return r, true
	}
	var seen uint8
	for {
		k, ok := s.str()
		if !ok || !s.lit(':') {
			return nil, false
		}
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		switch string(k) {
		case "type":
			if seen&1 != 0 {
				return nil, false
			}
			seen |= 1
			r.Type = string(v)
		case "id":
			if seen&2 != 0 {
				return nil, false
			}
			seen |= 2
			r.ID = string(v)
		default:
			return nil, false
		}
		if s.lit(',') {
			continue
		}
		if s.lit('}') {
			return r, true
		}
		return nil, false
	}
}

// appendCheckAnswer appends a's JSON, byte for byte what json.Marshal gives (TestCheckAnswerJSON).
func appendCheckAnswer(dst []byte, a *CheckAnswer) []byte {
	dst = append(dst, `{"allowed":`...)
	dst = strconv.AppendBool(dst, a.Allowed)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, a.Seq, 10)
	dst = append(dst, `,"reason":`...)
	dst = appendJSONString(dst, a.Reason)
	dst = append(dst, `,"grants":`...)
	if a.Grants == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range a.Grants {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendGrantUse(dst, &a.Grants[i])
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"events":`...)
	dst = appendJSONStrings(dst, a.Events)
	return append(dst, '}')
}

func appendGrantUse(dst []byte, g *aggregates.GrantUse) []byte {
	dst = append(dst, `{"permission":`...)
	dst = appendJSONString(dst, g.Permission)
	dst = append(dst, `,"scope":`...)
	dst = appendJSONString(dst, g.Scope)
	dst = append(dst, `,"source":`...)
	dst = appendJSONString(dst, g.Source)
	if g.NarrowedFrom != "" {
		dst = append(dst, `,"narrowed_from":`...)
		dst = appendJSONString(dst, g.NarrowedFrom)
	}
	if g.Unscoped {
		dst = append(dst, `,"unscoped":true`...)
	}
	dst = append(dst, `,"events":`...)
	dst = appendJSONStrings(dst, g.Events)
	return append(dst, '}')
}

func appendJSONStrings(dst []byte, xs []string) []byte {
	if xs == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, x := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, x)
	}
	return append(dst, ']')
}

// appendJSONString quotes s as encoding/json does. Printable ASCII other than the characters it
// escapes (" \ and, for HTML, < > &) is copied; any other string is left to encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, err := json.Marshal(s)
			if err != nil { // a string always encodes; keep the output valid regardless
				return append(dst, `""`...)
			}
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
