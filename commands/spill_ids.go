package commands

import (
	"encoding/binary"
	"errors"
	"unsafe"
)

// A spilled state, version 3: version 2 (spill_state.go) with its ids written short. Most of a
// state's bytes were ids in text: the event id of each provenance entry (a UUID, 36 bytes),
// and of each command it remembers the command id (a UUID), the command's hash (64 hex digits)
// and its event ids, the same event id often three times (a record registered by one command:
// its body's provenance, the command's event). In the compare shape a record spilled 388 bytes
// and a principal 1,053, and every command writes one or two of them; Pebble flushes and
// compacts them (1-2 KB compacted a command), and Snappy's blocks hardly shorten hex.
//
// Each id (a provenance value; a command's id, hash and event ids) is a uvarint tag, then:
//
//	0: str, the id as it is
//	1: 16 bytes, a UUID in its canonical form (lower-case hex, dashes after 8, 12, 16, 20)
//	2: 32 bytes, 64 lower-case hex digits
//	3+k: nothing: the same id as the state's k-th id written with tag 0, 1 or 2
//
// The first maxSpillIDs ids of a state written with tags 0-2 are numbered in the order written
// (the reader numbers them the same way); later ones are written whole. Only a form that reads
// back as the same string is used, so any id survives.
const spillVersionIDs = 3

const (
	idRaw  = 0
	idUUID = 1
	idHex  = 2
	idRef  = 3
	// maxSpillIDs bounds the ids a state numbers: a principal with many grants remembers one
	// command each, and the writer looks its ids up one after the other.
	maxSpillIDs = 64
)

// idWriter writes a state's ids in version 3's form. nil writes them as plain strings
// (versions 1 and 2, tenant snapshots).
type idWriter struct {
	ids   []string
	first [16]string // ids' first array: most states have fewer
}

func newIDWriter() *idWriter {
	w := &idWriter{}
	w.ids = w.first[:0]
	return w
}

func (w *idWriter) append(b []byte, s string) []byte {
	if w == nil {
		return appendStr(b, s)
	}
	for k, id := range w.ids {
		if id == s {
			return binary.AppendUvarint(b, uint64(idRef+k))
		}
	}
	if len(w.ids) < maxSpillIDs {
		w.ids = append(w.ids, s)
	}
	switch {
	case isUUID(s):
		b = append(b, idUUID)
		b = appendHexBytes(b, s[0:8])
		b = appendHexBytes(b, s[9:13])
		b = appendHexBytes(b, s[14:18])
		b = appendHexBytes(b, s[19:23])
		return appendHexBytes(b, s[24:36])
	case len(s) == 64 && isLowerHex(s):
		return appendHexBytes(append(b, idHex), s)
	}
	return appendStr(append(b, idRaw), s)
}

// isUUID reports whether s is a UUID as formatUUID writes it.
func isUUID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return isLowerHex(s[0:8]) && isLowerHex(s[9:13]) && isLowerHex(s[14:18]) && isLowerHex(s[19:23]) && isLowerHex(s[24:36])
}

// appendHexBytes appends the bytes that the lower-case hex digits s spell.
func appendHexBytes(b []byte, s string) []byte {
	for i := 0; i+1 < len(s); i += 2 {
		b = append(b, hexValue(s[i])<<4|hexValue(s[i+1]))
	}
	return b
}

func hexValue(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

const hexDigits = "0123456789abcdef"

// putHex writes the lower-case hex digits of src into dst (twice its length).
func putHex(dst []byte, src string) {
	for i := range len(src) {
		dst[2*i], dst[2*i+1] = hexDigits[src[i]>>4], hexDigits[src[i]&0xf]
	}
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// idReader reads version 3's ids: those numbered so far, and the bytes it formats them into.
type idReader struct {
	on    bool // the ids are in version 3's form
	ids   []string
	first [16]string // ids' first array
	// buf holds the text of the ids read in short form; a string points into it, and bytes
	// once handed out are never written again (a full buf is replaced, not grown in place).
	buf []byte
}

// id reads an id: version 3's form when the reader has an idReader, a plain string otherwise.
func (r *snapReader) id() string {
	ids := &r.ids
	if !ids.on {
		return r.str()
	}
	tag := r.uvarint()
	if r.err != nil {
		return ""
	}
	if tag >= idRef {
		if k := tag - idRef; k < uint64(len(ids.ids)) {
			return ids.ids[k]
		}
		r.err = errors.New("id refers to no earlier id")
		return ""
	}
	var s string
	switch tag {
	case idRaw:
		s = r.str()
	case idUUID:
		if len(r.s) < 16 {
			r.err = errors.New("truncated")
			return ""
		}
		u := r.s[:16]
		r.s = r.s[16:]
		out := ids.alloc(36, len(r.s))
		putHex(out[0:8], u[0:4])
		putHex(out[9:13], u[4:6])
		putHex(out[14:18], u[6:8])
		putHex(out[19:23], u[8:10])
		putHex(out[24:36], u[10:16])
		out[8], out[13], out[18], out[23] = '-', '-', '-', '-'
		s = unsafe.String(unsafe.SliceData(out), len(out))
	case idHex:
		if len(r.s) < 32 {
			r.err = errors.New("truncated")
			return ""
		}
		out := ids.alloc(64, len(r.s))
		putHex(out, r.s[:32])
		r.s = r.s[32:]
		s = unsafe.String(unsafe.SliceData(out), len(out))
	default:
		r.err = errors.New("bad id tag")
		return ""
	}
	if r.err == nil && len(ids.ids) < maxSpillIDs {
		ids.ids = append(ids.ids, s)
	}
	return s
}

// alloc returns n bytes of buf that no string points into yet. left is what is left of the
// state to read, mostly ids: a first buf of twice that holds the text of most states' ids.
func (ids *idReader) alloc(n, left int) []byte {
	if cap(ids.buf)-len(ids.buf) < n {
		ids.buf = make([]byte, 0, max(n+2*left, 2*cap(ids.buf)))
	}
	l := len(ids.buf)
	ids.buf = ids.buf[:l+n]
	return ids.buf[l : l+n : l+n]
}
