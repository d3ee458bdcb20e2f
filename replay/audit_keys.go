package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Key tags of the audit index: the byte after "<tenant>\x00" that names the table. doc.go lists
// the whole layout.
const (
	tagPrincipalLog = 'p' // <t> p <principal> <seq>          -> entry: events about what it can do
	tagRecordLog    = 'r' // <t> r <type> <id> <seq>          -> entry: events about who can see it
	tagTenantLog    = 'w' // <t> w <seq>                      -> entry: policy and feature changes
	tagTenant       = 'T' // <t> T                            -> tenant state (features)
	tagPrincipal    = 'P' // <t> P <principal>                -> principal state
	tagRecord       = 'R' // <t> R <type> <id>                -> record state
	tagHolder       = 'h' // <t> h <role> <principal>         -> "" (active holders of a role)
	tagLinkedFrom   = 'L' // <t> L <via type> <via id> <type> <id> -> "" (records linking to via)
)

// sep ends every component. Tenants, ids and types are tokens of [A-Za-z0-9_-], so they never
// contain it, and it sorts below every token byte: key order is component order.
const sep = 0x00

// auditAppliedKey holds the last applied stream sequence; '!' starts no tenant token.
var auditAppliedKey = []byte("!applied")

// akey builds "<c0>\x00<c1>\x00...<cn>\x00" into dst.
func akey(dst []byte, parts ...string) []byte {
	for _, p := range parts {
		dst = append(dst, p...)
		dst = append(dst, sep)
	}
	return dst
}

// A log key is a prefix (a principal's, a record's or the tenant's log) then the stream sequence
// as 8 big-endian bytes, so that a prefix scan is in stream order.
func principalLog(tenant, principal string) []byte { return appendPrincipalLog(nil, tenant, principal) }

func recordLog(tenant, typ, id string) []byte { return appendRecordLog(nil, tenant, typ, id) }

func tenantLog(tenant string) []byte { return appendTenantLog(nil, tenant) }

// appendPrincipalLog, appendRecordLog and appendTenantLog append the prefixes to dst: the
// writer builds its log keys in a buffer of its own (auditWriter.entry).
func appendPrincipalLog(dst []byte, tenant, principal string) []byte {
	return akey(dst, tenant, string(tagPrincipalLog), principal)
}

func appendRecordLog(dst []byte, tenant, typ, id string) []byte {
	return akey(dst, tenant, string(tagRecordLog), typ, id)
}

func appendTenantLog(dst []byte, tenant string) []byte {
	return akey(dst, tenant, string(tagTenantLog))
}

func logKey(prefix []byte, seq uint64) []byte {
	k := make([]byte, len(prefix)+8)
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[len(prefix):], seq)
	return k
}

// logSeq reads the sequence that ends a log key of prefix.
func logSeq(prefix, k []byte) (uint64, error) {
	if len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
		return 0, fmt.Errorf("replay: malformed audit log key %q under %q", k, prefix)
	}
	return binary.BigEndian.Uint64(k[len(prefix):]), nil
}

func tenantStateKey(tenant string) []byte { return akey(nil, tenant, string(tagTenant)) }

func principalStateKey(tenant, principal string) []byte {
	return akey(nil, tenant, string(tagPrincipal), principal)
}

func recordStateKey(tenant, typ, id string) []byte {
	return akey(nil, tenant, string(tagRecord), typ, id)
}

func holdersPrefix(tenant, role string) []byte { return akey(nil, tenant, string(tagHolder), role) }

func holderKey(tenant, role, principal string) []byte {
	return akey(holdersPrefix(tenant, role), principal)
}

func linkedFromPrefix(tenant, viaType, viaID string) []byte {
	return akey(nil, tenant, string(tagLinkedFrom), viaType, viaID)
}

func linkedFromKey(tenant, viaType, viaID, typ, id string) []byte {
	return akey(linkedFromPrefix(tenant, viaType, viaID), typ, id)
}

// lastParts splits the n components that follow prefix in k.
func lastParts(prefix, k []byte, n int) ([]string, error) {
	rest, ok := bytes.CutPrefix(k, prefix)
	if !ok || len(rest) == 0 || rest[len(rest)-1] != sep {
		return nil, fmt.Errorf("replay: malformed audit key %q under %q", k, prefix)
	}
	parts := bytes.Split(rest[:len(rest)-1], []byte{sep})
	if len(parts) != n {
		return nil, fmt.Errorf("replay: audit key %q has %d components after its prefix, want %d", k, len(parts), n)
	}
	out := make([]string, n)
	for i, p := range parts {
		out[i] = string(p)
	}
	return out, nil
}

// prefixEnd is the smallest key above every key that starts with prefix.
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
