package projections

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Key tags: the byte after "<tenant>\x00" that says which table a key belongs to. doc.go lists
// the whole layout.
const (
	tagTenant    = 'T' // <t> T                          -> seq | tenant JSON
	tagSeat      = 'S' // <t> S <principal>              -> level
	tagPrincipal = 'P' // <t> P <principal>              -> seq | principal (codec_binary.go)
	tagRecord    = 'R' // <t> R <type> <id>              -> seq | record (codec_binary.go)
	tagAll       = 'a' // <t> a <type> <id>              -> client
	tagClient    = 'c' // <t> c <client> <type> <id>     -> ""
	tagUnit      = 'u' // <t> u <kind> <unit> <type> <id> -> client
	tagOwner     = 'o' // <t> o <owner> <type> <id>      -> client
	tagAssignee  = 's' // <t> s <principal> <type> <id> <relation> -> client
	tagLink      = 'l' // <t> l <via type> <via id> <type> <id> -> client
	tagRole      = 'r' // <t> r <role> <principal>       -> level kind [denies] (roleHolderValue)
	tagDirect    = 'g' // <t> g <permission> <principal> -> ""
)

// sep ends every component of a key. Ids, types and tenants are tokens of [A-Za-z0-9_-], so
// they never contain it, and because it sorts below every token byte, byte order of keys is the
// order of their components as strings ("a" < "ab").
const sep = 0x00

// appliedKey holds the last applied stream sequence. It starts with '!', which no tenant token
// can start with, so it never falls inside a tenant's range.
var appliedKey = []byte("!applied")

// holdersKey holds the applied sequence of the last batch written by a release whose role
// holder entries carry their value (roleHolderValue): every batch writes it beside appliedKey.
// When the two differ, an older release wrote the model since (a rollback), whose writer
// changed levels and kinds without their entries' values (it compared "" with ""): the values
// cannot be trusted, and the projector's open rewrites them (migrate.go).
var holdersKey = []byte("!holders")

// key builds "<c0>\x00<c1>\x00...<cn>\x00" into dst; the tag is a one-byte component.
func key(dst []byte, parts ...string) []byte {
	for _, p := range parts {
		dst = append(dst, p...)
		dst = append(dst, sep)
	}
	return dst
}

func tenantPrefix(tenant string) []byte { return key(nil, tenant) }

func tenantKey(tenant string) []byte { return key(nil, tenant, string(tagTenant)) }

func seatKey(tenant, principal string) []byte {
	return key(nil, tenant, string(tagSeat), principal)
}

func principalKey(dst []byte, tenant, principal string) []byte {
	return key(dst, tenant, string(tagPrincipal), principal)
}

func recordKey(dst []byte, tenant, typ, id string) []byte {
	return key(dst, tenant, string(tagRecord), typ, id)
}

// prefixEnd returns the smallest key greater than every key starting with prefix.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// encodeSeq and decodeSeq frame a stored state: 8 bytes of big-endian sequence, then the body.
// The sequence lets a reader reuse a decoded copy without decoding the body again.
func encodeSeq(seq uint64, body []byte) []byte {
	out := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint64(out, seq)
	return append(out, body...)
}

func decodeSeq(v []byte) (uint64, []byte, error) {
	if len(v) < 8 {
		return 0, nil, fmt.Errorf("projections: stored value of %d bytes has no sequence", len(v))
	}
	return binary.BigEndian.Uint64(v), v[8:], nil
}
