package replay

import (
	"encoding/json"
	"strconv"
)

// The audit writer encodes a log entry per message and log, and the states a batch touches: with
// encoding/json's reflection that was a tenth of a rebuild's CPU. These encoders write the same
// bytes as json.Marshal (tested) for the two hot types, and give up (ok false) on any string
// json.Marshal would escape, so that the caller falls back to it: the index's bytes never
// depend on which encoder wrote them (Rebuild equals the live index byte for byte).

// appendEntry appends e as json.Marshal encodes it.
func appendEntry(dst []byte, e logEntry) ([]byte, bool) {
	if e == nil {
		return append(dst, "null"...), true
	}
	dst = append(dst, '[')
	for k, it := range e {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"i":`...)
		dst = strconv.AppendInt(dst, int64(it.I), 10)
		if it.Why != "" {
			dst = append(dst, `,"why":`...)
			var ok bool
			if dst, ok = appendPlainString(dst, it.Why); !ok {
				return dst, false
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), true
}

// appendRecordState appends r as json.Marshal encodes it.
func appendRecordState(dst []byte, r *recordState) ([]byte, bool) {
	ok := true
	str := func(s string) {
		if ok {
			dst, ok = appendPlainString(dst, s)
		}
	}
	dst = append(dst, `{"exists":`...)
	dst = strconv.AppendBool(dst, r.Exists)
	if r.Client != "" {
		dst = append(dst, `,"client":`...)
		str(r.Client)
	}
	if r.Owner != "" {
		dst = append(dst, `,"owner":`...)
		str(r.Owner)
	}
	dst = append(dst, `,"assignees":`...)
	if r.Assignees == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for k, a := range r.Assignees {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"principal":`...)
			str(a.Principal)
			dst = append(dst, `,"relation":`...)
			str(a.Relation)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"links":`...)
	if r.Links == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for k, l := range r.Links {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"type":`...)
			str(l.Type)
			dst = append(dst, `,"id":`...)
			str(l.ID)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if r.LinkedBy != 0 {
		dst = append(dst, `,"linked_by":`...)
		dst = strconv.AppendInt(dst, int64(r.LinkedBy), 10)
	}
	dst = append(dst, `,"first":`...)
	dst = strconv.AppendUint(dst, r.First, 10)
	if r.Removed != 0 {
		dst = append(dst, `,"removed":`...)
		dst = strconv.AppendUint(dst, r.Removed, 10)
	}
	return append(dst, '}'), ok
}

// appendPlainString appends s quoted when json.Marshal would write it without escapes: printable
// ASCII other than the quote, the backslash and the HTML characters it escapes (<, >, &).
func appendPlainString(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return dst, false
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// encodeValue encodes an index value: the fast encoders for log entries and record states, else
// (other types, or strings needing escapes) json.Marshal. buf is reused between calls; the
// result is valid until the next call.
func encodeValue(buf []byte, v any) ([]byte, error) {
	var out []byte
	ok := false
	switch x := v.(type) {
	case logEntry:
		out, ok = appendEntry(buf[:0], x)
	case *recordState:
		out, ok = appendRecordState(buf[:0], x)
	}
	if ok {
		return out, nil
	}
	return json.Marshal(v)
}
