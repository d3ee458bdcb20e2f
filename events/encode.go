package events

import (
	"encoding/json"
	"strconv"
	"time"
)

// encodeEnvelopes is json.Marshal(envs), byte for byte, written without reflection: every
// append (a message per command of an import) encodes its envelopes, and Marshal was a third of
// building the message. An envelope with anything Marshal would have to escape or rewrite (a
// string outside printable ASCII or with " \ < > &, data that is not compact, a time Marshal
// refuses) is left to Marshal itself, so the bytes are Marshal's whatever the envelopes hold.
func encodeEnvelopes(envs []Envelope) ([]byte, error) { return encodeChecked(envs, false) }

// encodeChecked is encodeEnvelopes; valid says that each envelope's data is known to be valid
// JSON, as it is once Decode read it (an append's validation): json.Valid was a third of
// compactData's cost, for data json.Marshal had just written.
func encodeChecked(envs []Envelope, valid bool) ([]byte, error) {
	if envs == nil {
		return json.Marshal(envs)
	}
	n := 2
	for i := range envs {
		e := &envs[i]
		n += 200 + len(e.ID) + len(e.Type) + len(e.Tenant) + len(e.Aggregate.Kind) + len(e.Aggregate.Type) +
			len(e.Aggregate.ID) + len(e.Actor) + len(e.Via) + len(e.CommandID) + len(e.Cause) + len(e.Data) + len(e.CommandHash)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i := range envs {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendEnvelope(b, &envs[i], valid); !ok {
			return json.Marshal(envs)
		}
	}
	return append(b, ']'), nil
}

// appendEnvelope appends e as json.Marshal writes it; false when e holds something only
// Marshal should write (see encodeEnvelopes). valid: e.Data is known to be valid JSON.
func appendEnvelope(b []byte, e *Envelope, valid bool) ([]byte, bool) {
	ok := true
	str := func(b []byte, key, s string) []byte {
		ok = ok && PlainJSON(s)
		b = append(b, key...)
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	b = str(b, `{"id":`, e.ID)
	b = str(b, `,"type":`, e.Type)
	b = append(b, `,"schema":`...)
	b = strconv.AppendInt(b, int64(e.Schema), 10)
	b = str(b, `,"tenant":`, e.Tenant)
	b = str(b, `,"aggregate":{"kind":`, e.Aggregate.Kind)
	if e.Aggregate.Type != "" {
		b = str(b, `,"type":`, e.Aggregate.Type)
	}
	b = str(b, `,"id":`, e.Aggregate.ID)
	b = str(b, `},"actor":`, e.Actor)
	if e.Via != "" {
		b = str(b, `,"via":`, e.Via)
	}
	b = str(b, `,"command_id":`, e.CommandID)
	if e.Cause != "" {
		b = str(b, `,"cause":`, e.Cause)
	}
	if !ok {
		return b, false
	}
	b = append(b, `,"time":"`...)
	n0 := len(b)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	// Marshal refuses a year outside 0-9999 (not 4 digits) and writes an offset only for a
	// time not in UTC: both are left to it.
	if len(b) < n0+5 || b[n0+4] != '-' || b[len(b)-1] != 'Z' {
		return b, false
	}
	b = append(b, `","data":`...)
	if !compactData(e.Data, valid) {
		return b, false
	}
	b = append(b, e.Data...)
	if e.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, e.Seq, 10)
	}
	if e.CommandHash != "" {
		b = str(b, `,"command_hash":`, e.CommandHash)
	}
	return append(b, '}'), ok
}

// PlainJSON reports whether json.Marshal writes s as it is between quotes: printable ASCII
// without the characters it escapes (" and \, and < > & as HTML-safe JSON). Encoders that
// write what Marshal would without its reflection use it (here and commands' answers).
func PlainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// compactData reports whether Marshal copies raw data as it is: valid JSON without
// whitespace between its tokens, and without what Marshal escapes inside strings (< > & and
// U+2028, U+2029). valid: d is known to be valid JSON, not checked again.
func compactData(d []byte, valid bool) bool {
	if len(d) == 0 || (!valid && !json.Valid(d)) {
		return false
	}
	in := false // inside a string
	for i := 0; i < len(d); i++ {
		c := d[i]
		switch {
		case in && c == '\\':
			i++ // the escaped character, whatever it is
		case in && c == '"':
			in = false
		case in && (c == '<' || c == '>' || c == '&'):
			return false
		case in && c == 0xe2 && i+2 < len(d) && d[i+1] == 0x80 && (d[i+2] == 0xa8 || d[i+2] == 0xa9):
			return false
		case in:
		case c == '"':
			in = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return true
}
