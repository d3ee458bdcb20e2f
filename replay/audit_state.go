package replay

import (
	"fmt"
	"slices"
	"strings"

	"github.com/acl-es/acl/events"
)

// logEntry is the value of a log key: which envelopes of the message at that sequence belong to
// the log, and why each does ("" for an event of the aggregate itself).
type logEntry []entryItem

type entryItem struct {
	I   int    `json:"i"`
	Why string `json:"why,omitempty"`
}

// add records that envelope i belongs to the log for reason why; reasons of one envelope are
// joined, each once.
func (e logEntry) add(i int, why string) logEntry {
	for k := range e {
		if e[k].I != i {
			continue
		}
		if why != "" && !slices.Contains(strings.Split(e[k].Why, ", "), why) {
			if e[k].Why == "" {
				e[k].Why = why
			} else {
				e[k].Why += ", " + why
			}
		}
		return e
	}
	e = append(e, entryItem{I: i, Why: why})
	slices.SortFunc(e, func(a, b entryItem) int { return a.I - b.I })
	return e
}

// merge adds every item of o.
func (e logEntry) merge(o logEntry) logEntry {
	for _, it := range o {
		e = e.add(it.I, it.Why)
	}
	return e
}

// Reasons an event is in a log besides being the aggregate's own (stable: part of the history
// answer, field "why").
const (
	whyPolicy       = "policy"
	whySubscription = "subscription"
	whyRolePrefix   = "role:"   // role:<id>: a role the principal held changed
	whyRecordPrefix = "record:" // record:<type>/<id>: the principal's relation or ownership changed
	whyLinkPrefix   = "link:"   // link:<type>/<id>: a record this one links to changed assignees
	whyClientPrefix = "client:" // client:<type>/<id>: a record naming this client changed (implication)
)

// tenantState is what the index keeps of a tenant: its features, to tell a subscription change
// that changes what roles give from one that only changes seat limits, and the record types an
// implication rule of its policy starts from (their changes change who can see their client).
type tenantState struct {
	Features   []string `json:"features"`
	ImplyTypes []string `json:"imply_types"`
}

// implyTypes lists, sorted, the record types whose permission implies one on their client.
func implyTypes(p events.Policy) []string {
	var out []string
	for _, im := range p.Implies {
		if im.Field == "client" {
			typ, _, _ := strings.Cut(im.Permission, ".")
			out = append(out, typ)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// principalState is what the index keeps of a principal: the roles it holds (role changes reach
// their holders), its kind (principals are records of a type by kind), and its lifetime, which
// bounds the tenant-wide log merged into its history.
type principalState struct {
	Kind    string   `json:"kind"`
	Roles   []string `json:"roles"`
	First   uint64   `json:"first"`
	Removed uint64   `json:"removed,omitempty"`
}

// recordState is what the index keeps of a record: who holds a relation to it or owns it (their
// logs get its changes) and what it links to (reverse links reach the linking records).
type recordState struct {
	Exists    bool               `json:"exists"`
	Client    string             `json:"client,omitempty"`
	Owner     string             `json:"owner,omitempty"`
	Assignees []events.Assignee  `json:"assignees"`
	Links     []events.RecordRef `json:"links"`
	LinkedBy  int                `json:"linked_by,omitempty"` // active records linking to it
	First     uint64             `json:"first"`
	Removed   uint64             `json:"removed,omitempty"`
}

// ties lists, sorted, the principal's ties to the record: "owner" and "rel:<relation>"; nil
// when the record is not active. A change of this list is a change of what the principal may
// do to the record.
func (r *recordState) ties(principal string) []string {
	if !r.Exists || r.Removed != 0 {
		return nil
	}
	var out []string
	if r.Owner == principal {
		out = append(out, "owner")
	}
	for _, a := range r.Assignees {
		if a.Principal == principal {
			out = append(out, "rel:"+a.Relation)
		}
	}
	return out
}

// tied lists, sorted and unique, every principal that owns the record or holds a relation.
func (r *recordState) tied() []string {
	var out []string
	if r.Owner != "" {
		out = append(out, r.Owner)
	}
	for _, a := range r.Assignees {
		out = append(out, a.Principal)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// assigned lists, sorted and unique, the principals with a relation to an active record: what a
// link rule follows (owning is not a relation).
func (r *recordState) assigned() []string {
	if !r.Exists || r.Removed != 0 {
		return nil
	}
	var out []string
	for _, a := range r.Assignees {
		out = append(out, a.Principal)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (r *recordState) clone() *recordState {
	c := *r
	c.Assignees = slices.Clone(r.Assignees)
	c.Links = slices.Clone(r.Links)
	return &c
}

func assigneeCmp(a, b events.Assignee) int {
	if c := strings.Compare(a.Principal, b.Principal); c != 0 {
		return c
	}
	return strings.Compare(a.Relation, b.Relation)
}

// normalAssignees sorts, defaults the relation and removes duplicates, as the aggregate does.
func normalAssignees(as []events.Assignee) []events.Assignee {
	out := slices.Clone(as)
	for i := range out {
		if out[i].Relation == "" {
			out[i].Relation = events.DefaultRelation
		}
	}
	slices.SortFunc(out, assigneeCmp)
	return slices.Compact(out)
}

func decodeJSON[T any](v []byte, what string) (*T, error) {
	x := new(T)
	if err := decodeState(v, x); err != nil {
		return nil, fmt.Errorf("replay: decode %s: %w", what, err)
	}
	return x, nil
}
