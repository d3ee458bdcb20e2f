package aggregates

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/acl-es/acl/events"
)

// Query bodies and answers of SPEC section 7, shared by the servers (projections, replay) and
// the Go client (commands): the JSON names are the wire format. Every body may also carry
// min_seq (wait until the read model has applied that stream sequence) and as_of (answer on the
// state at a Moment); the servers read those two fields before the query's own.

// CheckQuery asks whether Principal may do Permission (to Record, if given).
type CheckQuery struct {
	Principal  string            `json:"principal"`
	Permission string            `json:"permission"`
	Record     *events.RecordRef `json:"record,omitempty"`
}

// CheckAnswer is the decision with its explanation.
type CheckAnswer struct {
	Allowed bool       `json:"allowed"`
	Seq     uint64     `json:"seq"`
	Reason  string     `json:"reason"`
	Grants  []GrantUse `json:"grants"`
	Events  []string   `json:"events"`
}

// VisibleQuery lists the records of Type on which Principal is allowed Type.Action.
type VisibleQuery struct {
	Principal string `json:"principal"`
	Type      string `json:"type"`
	Action    string `json:"action"` // default "view"
	Limit     int    `json:"limit"`  // 0: the default
	Cursor    string `json:"cursor"` // the last id of the previous page
}

// VisibleAnswer is one page of ids, ascending.
type VisibleAnswer struct {
	IDs        []string `json:"ids"`
	NextCursor string   `json:"next_cursor"`
	Seq        uint64   `json:"seq"`
}

// PermissionsQuery asks what Principal may do.
type PermissionsQuery struct {
	Principal string `json:"principal"`
}

// PermissionsAnswer: the principal's kind, level, roles, the grants in force (effective grants
// narrowed by kind and access level, with provenance; none when disabled or removed) and the
// denied permissions.
type PermissionsAnswer struct {
	Kind   string     `json:"kind"`
	Level  string     `json:"level"`
	Roles  []string   `json:"roles"`
	Grants []GrantUse `json:"grants"`
	Denied []string   `json:"denied"`
	Seq    uint64     `json:"seq"`
}

// PrincipalsQuery asks who is allowed Permission on Record.
type PrincipalsQuery struct {
	Record     events.RecordRef `json:"record"`
	Permission string           `json:"permission"`
}

// RecipientsQuery asks who is notified about Record.
type RecipientsQuery struct {
	Record events.RecordRef `json:"record"`
}

// PrincipalsAnswer lists principal ids, ascending (principals and recipients queries).
type PrincipalsAnswer struct {
	Principals []string `json:"principals"`
	Seq        uint64   `json:"seq"`
}

// RecipientsAnswer is the answer of the recipients query.
type RecipientsAnswer = PrincipalsAnswer

// HistoryRequest is the body of the history query (SPEC section 7). From and To bound the
// sequences shown, both included; a time means the last event at or before it. AsOf, when set,
// caps To: the history as it stood then.
type HistoryRequest struct {
	Principal string            `json:"principal,omitempty"`
	Record    *events.RecordRef `json:"record,omitempty"`
	From      *Moment           `json:"from,omitempty"`
	To        *Moment           `json:"to,omitempty"`
	Limit     int               `json:"limit,omitempty"`
	Cursor    string            `json:"cursor,omitempty"`
	MinSeq    uint64            `json:"min_seq,omitempty"`
	AsOf      *Moment           `json:"as_of,omitempty"`
}

// HistoryEvent is one envelope of a history, with its seq, and why it is in this history when
// it is not an event of the principal or record itself: "role:<id>" (a role it held changed),
// "record:<type>/<id>" (its relation to or ownership of that record changed), "link:<type>/<id>"
// (the assignees of a record this one links to changed), "policy", "subscription" (the tenant's
// features changed); several reasons are joined by ", ".
type HistoryEvent struct {
	events.Envelope
	Why string `json:"why,omitempty"`
}

// HistoryAnswer is the answer of the history query. NextCursor is the sequence of the last
// message of the page ("" at the end); Seq is the last sequence the history covers.
type HistoryAnswer struct {
	Events     []HistoryEvent `json:"events"`
	NextCursor string         `json:"next_cursor"`
	Seq        uint64         `json:"seq"`
}

// DiffRequest is the body of the diff query (SPEC section 7): a principal's access at moment From
// against moment To (each a sequence or a time, as as_of).
type DiffRequest struct {
	Principal string  `json:"principal"`
	From      *Moment `json:"from"`
	To        *Moment `json:"to"`
	MinSeq    uint64  `json:"min_seq,omitempty"`
	AsOf      *Moment `json:"as_of,omitempty"` // accepted for uniformity; From and To say when
}

// DiffAnswer: the grants in force at To and not at From (Added, as they are at To) and the
// reverse (Removed, as they were at From), compared without their provenance; per record type
// the principal held a view permission of at either moment, the records it could view at each
// and which it gained and lost (Visible); and the events that caused the change: the principal's
// history after From up to To (EventsNextCursor continues it with the history query when there
// were more than a history page), and the own events in that window of the records listed as
// gained or lost (the earliest MaxHistoryLimit; not their assignments, which change only the
// access of the principal they name). Seq is To's sequence.
type DiffAnswer struct {
	Added            []GrantUse     `json:"added"`
	Removed          []GrantUse     `json:"removed"`
	Visible          []VisibleCount `json:"visible"`
	Events           []HistoryEvent `json:"events"`
	EventsNextCursor string         `json:"events_next_cursor"`
	FromSeq          uint64         `json:"from_seq"`
	Seq              uint64         `json:"seq"`
}

// MaxDiffIDs bounds the ids a diff lists per type and direction (SPEC section 8's bound for
// effects); GainedCount and LostCount count them all.
const MaxDiffIDs = 1000

// VisibleCount is how many records of a type a principal could view at each moment, and which
// it gained (visible at To, not at From) and lost (the reverse): ids ascending, the first
// MaxDiffIDs of each, with the whole counts.
type VisibleCount struct {
	Type        string   `json:"type"`
	From        int      `json:"from"`
	To          int      `json:"to"`
	Gained      []string `json:"gained"`
	GainedCount int      `json:"gained_count"`
	Lost        []string `json:"lost"`
	LostCount   int      `json:"lost_count"`
}

// Moment is a point in the stream's history as the wire gives it (SPEC section 7, as_of, from,
// to): a stream sequence as a number, or an RFC 3339 time meaning the last event stored at or
// before it. The state at a moment includes the event at its sequence.
type Moment struct {
	Seq  uint64
	Time time.Time // set (UTC) when the moment was given as a time
}

// AtSeq is the moment of a stream sequence.
func AtSeq(seq uint64) Moment { return Moment{Seq: seq} }

// AtTime is the moment of the last event at or before t (events.Store.SeqAtTime).
func AtTime(t time.Time) Moment { return Moment{Time: t.UTC()} }

// IsTime reports whether the moment was given as a time.
func (m Moment) IsTime() bool { return !m.Time.IsZero() }

func (m Moment) String() string {
	if m.IsTime() {
		return m.Time.Format(time.RFC3339Nano)
	}
	return strconv.FormatUint(m.Seq, 10)
}

// ParseMoment reads a moment as an operator types it: digits are a sequence, anything else an
// RFC 3339 time (an offset is accepted and read as UTC).
func ParseMoment(s string) (Moment, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Moment{}, Errorf(CodeInvalidArgument, "empty moment: want a stream sequence or an RFC 3339 time")
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Moment{}, Errorf(CodeInvalidArgument, "moment %q: not a stream sequence: %v", s, err)
		}
		return Moment{Seq: seq}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Moment{}, Errorf(CodeInvalidArgument, "moment %q: want a stream sequence or an RFC 3339 time such as 2026-03-01T12:00:00Z", s)
	}
	return Moment{Time: t.UTC()}, nil
}

// UnmarshalJSON accepts a non-negative integer or a string (a time, or digits).
func (m *Moment) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return Errorf(CodeInvalidArgument, "moment %s: %v", b, err)
		}
		v, err := ParseMoment(s)
		if err != nil {
			return err
		}
		*m = v
		return nil
	}
	seq, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return Errorf(CodeInvalidArgument, "moment %s: want a non-negative integer sequence or an RFC 3339 time", b)
	}
	*m = Moment{Seq: seq}
	return nil
}

// MarshalJSON writes a sequence as a number and a time as an RFC 3339 string.
func (m Moment) MarshalJSON() ([]byte, error) {
	if m.IsTime() {
		return json.Marshal(m.Time.Format(time.RFC3339Nano))
	}
	return []byte(strconv.FormatUint(m.Seq, 10)), nil
}
