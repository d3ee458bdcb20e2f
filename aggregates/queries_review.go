package aggregates

import "time"

// ReviewRequest is the body of the review query (SPEC section 8): the periodic access review
// ("who can do what") at a moment (as_of, default now), of the listed principals (default all,
// in id order, a page of Limit after Cursor) and the listed record types (default: every type
// each principal may view).
type ReviewRequest struct {
	Principals []string `json:"principals,omitempty"`
	Types      []string `json:"types,omitempty"`
	Limit      int      `json:"limit,omitempty"`  // 0: the default (100); at most 1000
	Cursor     string   `json:"cursor,omitempty"` // the last principal id of the previous page
	MinSeq     uint64   `json:"min_seq,omitempty"`
	AsOf       *Moment  `json:"as_of,omitempty"`
}

// ReviewAnswer is a page of the review: per principal what it may do, and per record type who
// on this page may view how many of its records. NextCursor continues ("" at the end); Seq is
// the moment's sequence.
type ReviewAnswer struct {
	Principals []ReviewPrincipal `json:"principals"`
	Types      []ReviewType      `json:"types"`
	NextCursor string            `json:"next_cursor"`
	Seq        uint64            `json:"seq"`
}

// ReviewPrincipal is one principal's entry: kind, level, roles, effective grants with their
// sources (as permissions answers them), the number of records of each type it may view, and
// the last change to its access (nil if none up to the moment).
type ReviewPrincipal struct {
	Principal  string         `json:"principal"`
	Kind       string         `json:"kind"`
	Level      string         `json:"level"`
	Removed    bool           `json:"removed,omitempty"`
	Roles      []string       `json:"roles"`
	Grants     []GrantUse     `json:"grants"`
	Visible    map[string]int `json:"visible"`
	LastChange *ReviewChange  `json:"last_change"`
}

// ReviewChange is the last event in a principal's history (SPEC section 4: every event that
// changed what it can do): when, by whom, through which command.
type ReviewChange struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Via       string    `json:"via,omitempty"`
	Command   string    `json:"command"`
	CommandID string    `json:"command_id"`
	Event     string    `json:"event"`
	Type      string    `json:"type"`
}

// ReviewType is, for one record type, how many of its records each principal of the page may
// view (those who may view none are left out).
type ReviewType struct {
	Type    string         `json:"type"`
	Viewers []ReviewViewer `json:"viewers"`
}

// ReviewViewer is one principal and the number of records it may view.
type ReviewViewer struct {
	Principal string `json:"principal"`
	Count     int    `json:"count"`
}
