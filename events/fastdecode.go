package events

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// A replay spends most of its CPU decoding envelopes, and encoding/json (reflection, a
// validation pass, then a decoding pass) is several times slower than a scanner that knows the
// one shape Append writes. fastEnvelopes is that scanner. It accepts only input that it
// understands completely: the JSON array of envelope objects with the exact keys
// json.Marshal(Envelope) writes, strings without escapes, plain integers, and a data object;
// anything else (an escape, an unknown or differently cased key, a null, invalid UTF-8 in a
// string, an error) makes it give up and the caller decodes with encoding/json, which
// therefore defines the result. FuzzDecodeEnvelope checks that both agree on all input the
// scanner accepts.

// maxDepth bounds the nesting of data the scanner follows (encoding/json allows 10000).
const maxDepth = 512

// scanner walks a byte slice; a method returning false means "give up".
type scanner struct {
	b []byte
	i int
}

// fastEnvelopes decodes data written by json.Marshal([]Envelope), or reports ok=false.
func fastEnvelopes(data []byte) (envs []Envelope, ok bool) {
	s := scanner{b: data}
	s.ws()
	if !s.eat('[') {
		return nil, false
	}
	envs = []Envelope{}
	s.ws()
	if s.eat(']') {
		return envs, s.end()
	}
	for {
		envs = append(envs, Envelope{})
		if !s.envelope(&envs[len(envs)-1]) {
			return nil, false
		}
		s.ws()
		if s.eat(']') {
			return envs, s.end()
		}
		if !s.eat(',') {
			return nil, false
		}
		s.ws()
	}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// object calls field for each key of an object; field parses the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	s.ws()
	if s.eat('}') {
		return true
	}
	for {
		key, ok := s.plainString()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		if !field(key) {
			return false
		}
		s.ws()
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
		s.ws()
	}
}

func (s *scanner) envelope(e *Envelope) bool {
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return s.str(&e.ID)
		case "type":
			return s.known(&e.Type, typeNames)
		case "schema":
			n, ok := s.uint(false)
			e.Schema = int(n)
			return ok
		case "tenant":
			return s.str(&e.Tenant)
		case "aggregate":
			return s.aggregate(&e.Aggregate)
		case "actor":
			return s.str(&e.Actor)
		case "via":
			return s.str(&e.Via)
		case "command_id":
			return s.str(&e.CommandID)
		case "cause":
			return s.str(&e.Cause)
		case "time":
			return s.time(&e.Time)
		case "data":
			return s.data(&e.Data)
		case "seq":
			n, ok := s.uint(true)
			e.Seq = n
			return ok
		case "command_hash":
			return s.str(&e.CommandHash)
		}
		return false
	})
}

func (s *scanner) aggregate(a *AggregateRef) bool {
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "kind":
			return s.known(&a.Kind, kindNames)
		case "type":
			return s.str(&a.Type)
		case "id":
			return s.str(&a.ID)
		}
		return false
	})
}

// plainString reads a string with no escape, no control character and valid UTF-8, and
// returns its bytes without quotes.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start, ascii := s.i, true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		s.i++
	}
	return nil, false
}

// known reads a plain string and answers it from names when it is there: the event types and
// aggregate kinds are a few constants, not worth an allocation per envelope.
func (s *scanner) known(dst *string, names map[string]string) bool {
	v, ok := s.plainString()
	if !ok {
		return false
	}
	if n, ok := names[string(v)]; ok {
		*dst = n
	} else {
		*dst = string(v)
	}
	return true
}

var (
	typeNames = func() map[string]string {
		m := make(map[string]string, len(AllTypes))
		for _, t := range AllTypes {
			m[t] = t
		}
		return m
	}()
	kindNames = map[string]string{KindTenant: KindTenant, KindPrincipal: KindPrincipal, KindRecord: KindRecord}
)

func (s *scanner) str(dst *string) bool {
	v, ok := s.plainString()
	if ok {
		*dst = string(v)
	}
	return ok
}

// uint reads a JSON integer without sign, fraction or exponent that fits in an int (or a
// uint64 when wide).
func (s *scanner) uint(wide bool) (uint64, bool) {
	start := s.i
	var n uint64
	limit := uint64(1<<63 - 1)
	if wide {
		limit = 1<<64 - 1
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
		s.i++
	}
	digits := s.i - start
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	return n, true
}

// time decodes the quoted value with time.Time's own UnmarshalJSON, as encoding/json does.
func (s *scanner) time(dst *time.Time) bool {
	start := s.i
	if _, ok := s.plainString(); !ok {
		return false
	}
	var t time.Time
	if err := t.UnmarshalJSON(s.b[start:s.i]); err != nil {
		return false
	}
	*dst = t
	return true
}

// data keeps the raw bytes of an object value, after checking that they are valid JSON.
func (s *scanner) data(dst *json.RawMessage) bool {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	start := s.i
	if !s.skip(0) {
		return false
	}
	// A copy, as json.RawMessage makes: the envelope must not pin the message's buffer.
	*dst = append([]byte(nil), s.b[start:s.i]...)
	return true
}
