package events

import "fmt"

// Prefix is the root of every event subject; the stream ACL_EVENTS holds Prefix + ".>".
const Prefix = "acl.events"

// ValidToken reports whether s may be an id, a record type or a unit kind: 1 to 64 of
// A-Z a-z 0-9 _ -, so that it is always exactly one NATS subject token. A loop rather than a
// regular expression: every command checks several tokens, and the regexp took 13 % of the
// bulk path's CPU in an import.
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Subject returns the subject of an aggregate of a tenant (SPEC section 6).
func Subject(tenant string, a AggregateRef) (string, error) {
	var buf [MaxSubject]byte
	b, err := AppendSubject(buf[:0], tenant, a)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// MaxSubject is the length of the longest subject Subject returns (a record's, every token 64
// bytes long).
const MaxSubject = len(Prefix) + 3*64 + len(".record...")

// AppendSubject appends the subject Subject returns to dst: a lookup by subject (the command
// cache's, every command's) then needs no string of its own. dst is returned unchanged with
// the error.
func AppendSubject(dst []byte, tenant string, a AggregateRef) ([]byte, error) {
	if !ValidToken(tenant) || !ValidToken(a.ID) {
		return dst, fmt.Errorf("%w: subject token %q/%q", ErrInvalid, tenant, a.ID)
	}
	n := len(dst)
	dst = append(dst, Prefix+"."...)
	dst = append(dst, tenant...)
	switch a.Kind {
	case KindTenant:
		dst = append(dst, ".tenant."...)
	case KindPrincipal:
		dst = append(dst, ".principal."...)
	case KindRecord:
		if !ValidToken(a.Type) {
			return dst[:n], fmt.Errorf("%w: record type token %q", ErrInvalid, a.Type)
		}
		dst = append(dst, ".record."...)
		dst = append(dst, a.Type...)
		dst = append(dst, '.')
	default:
		return dst[:n], fmt.Errorf("%w: aggregate kind %q", ErrInvalid, a.Kind)
	}
	return append(dst, a.ID...), nil
}

// TenantRef, PrincipalRef and RecordAggregate build aggregate references.
func TenantRef(tenant string) AggregateRef { return AggregateRef{Kind: KindTenant, ID: tenant} }
func PrincipalRef(id string) AggregateRef  { return AggregateRef{Kind: KindPrincipal, ID: id} }
func RecordAggregate(typ, id string) AggregateRef {
	return AggregateRef{Kind: KindRecord, Type: typ, ID: id}
}
