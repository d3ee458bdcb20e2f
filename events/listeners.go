package events

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// ChangesListeners tells who would receive the change feed's messages, from the subscriptions
// a server holds in StoreAccount, where the changes stream republishes each change on
// ChangesPrefix: acld's own, the shadow subscriptions that a caller's subscription adds there
// through its import of ChangesPrefix.> (nats-server adds them when it takes the caller's SUB,
// before it answers the caller's next PING, so a caller that flushed its subscription is
// seen), and those that routes bring from the other servers of a cluster (asynchronously, as
// they bring them for delivery). NATS drops a message that no subscription matches; the feed
// asks first, so as not to derive it.
//
// Only a server in acld's process can be asked: with an external server or cluster the feed
// derives everything, as acld cannot tell. Nobody else can read ACL_CHANGES through
// JetStream: the stream lives in StoreAccount, whose only user is acld (Layout), and callers
// import the republished subjects, not its API.
//
// Everyone, Principal and Gaps ask the account's subscription list at the call (Interest,
// under its read lock, without adding to its cache: ~150 ns). A subscription to one
// principal's subject cannot be found that way without naming the principal, so Tenant
// answers from the subjects of the account's subscriptions to the feed as Refresh last read
// them (Subsz); Refresh reads them again only when the list's count of insertions and removals
// moved (~5 µs to find out).
type ChangesListeners struct {
	s   *server.Server
	acc *server.Account

	mu      sync.Mutex
	read    bool      // the subscriptions were read, at version
	version [2]uint64 // the account's subscription insertions and removals when they were read
	// What the account's subscriptions to the feed may receive, as Refresh last read them: every
	// tenant's messages (a wildcard in the tenant's place), or those of the tenants named there.
	// Tenant is a map lookup, whatever the number of subscriptions (a session service may hold
	// one per principal it follows).
	anyTenant bool
	tenants   map[string]bool
}

// NewChangesListeners asks s, a server with acld's accounts (Layout).
func NewChangesListeners(s *server.Server) (*ChangesListeners, error) {
	acc, err := s.LookupAccount(StoreAccount)
	if err != nil {
		return nil, fmt.Errorf("events: change feed listeners: account %s: %w", StoreAccount, err)
	}
	return &ChangesListeners{s: s, acc: acc}, nil
}

// anyPrincipal is a principal token that no principal id is (ids are ValidToken): only a
// subscription with a wildcard in the principal's place matches a subject that ends in it.
const anyPrincipal = "~"

// Everyone reports whether a subscription would receive every principal's changes in tenant:
// one with a wildcard in the principal's place (acl.changes.>, acl.changes.<tenant>.>,
// acl.changes.*.principal.*, ...).
func (l *ChangesListeners) Everyone(tenant string) bool {
	return l.acc.Interest(ChangesSubject(tenant, anyPrincipal)) > 0
}

// Principal reports whether a subscription would receive principal's changes in tenant.
func (l *ChangesListeners) Principal(tenant, principal string) bool {
	return l.acc.Interest(ChangesSubject(tenant, principal)) > 0
}

// Gaps reports whether a subscription would receive tenant's gaps (ChangesPrefix.<tenant>.gap).
func (l *ChangesListeners) Gaps(tenant string) bool {
	return l.acc.Interest(ChangesPrefix+"."+tenant+".gap") > 0
}

// Refresh reads the subjects of the account's subscriptions to the feed again if any
// subscription of the account came or went since the last read. What Tenant answers after it
// holds for every subscription made before it.
func (l *ChangesListeners) Refresh() {
	sz, err := l.s.Subsz(&server.SubszOptions{Account: StoreAccount})
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && l.read && l.version == [2]uint64{sz.NumInserts, sz.NumRemoves} {
		return
	}
	// The counts come from before the list is walked: a subscription that comes or goes
	// meanwhile moves them past these, and the next Refresh reads the list again.
	sz, err = l.s.Subsz(&server.SubszOptions{Account: StoreAccount, Subscriptions: true, Limit: math.MaxInt32})
	if err != nil {
		l.read = false // Tenant answers yes until a read succeeds
		return
	}
	l.anyTenant, l.tenants = false, make(map[string]bool)
	for _, d := range sz.Subs {
		if server.SubjectsCollide(d.Subject, ChangesPrefix+".>") {
			l.note(d.Subject)
		}
	}
	l.read, l.version = true, [2]uint64{sz.NumInserts, sz.NumRemoves}
}

// note records what a subscription to subject, one that collides with ChangesPrefix.>, may
// receive of the feed, whose messages are ChangesPrefix.<tenant>.<two or more tokens>: what
// server.SubjectsCollide(subject, ChangesPrefix+"."+tenant+".>") says for each tenant.
func (l *ChangesListeners) note(subject string) {
	toks := strings.Split(subject, ".")
	switch {
	case len(toks) < 3: // ends in ">" (>, acl.>): every message
		l.anyTenant = true
	case toks[2] == ">":
		l.anyTenant = true
	case len(toks) == 3: // acl.changes.X: no message of the feed has three tokens
	case toks[2] == "*":
		l.anyTenant = true
	default:
		l.tenants[toks[2]] = true
	}
}

// Quiet reports whether no subscription, as Refresh last read them, may receive any message
// of tenant's feed, and if so a mark of that reading for Unmoved. It answers false when it
// cannot tell: no reading yet, or a route or a leaf node (Tenant).
func (l *ChangesListeners) Quiet(tenant string) (mark uint64, ok bool) {
	if l.s.NumRoutes() > 0 || l.s.NumLeafNodes() > 0 {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.read || l.anyTenant || l.tenants[tenant] {
		return 0, false
	}
	return l.version[0], true
}

// Unmoved reports whether no subscription was added to the account since the reading that
// Quiet marked mark (the list's insertions, counted under its lock, are still mark), nor a
// route or a leaf node connected: what Quiet answered then still holds now. ~5 µs on an idle
// server, up to ~50 µs under load (Subsz walks the list's subject cache for its statistics).
func (l *ChangesListeners) Unmoved(mark uint64) bool {
	if l.s.NumRoutes() > 0 || l.s.NumLeafNodes() > 0 {
		return false
	}
	sz, err := l.s.Subsz(&server.SubszOptions{Account: StoreAccount})
	return err == nil && sz.NumInserts == mark
}

// Tenant reports whether a subscription, as Refresh last read them, may receive a message of
// tenant's feed (a change of any principal, or a gap). Subsz lists the server's own clients'
// subscriptions, not those routes or leaf nodes bring: a server with any answers yes.
func (l *ChangesListeners) Tenant(tenant string) bool {
	if l.s.NumRoutes() > 0 || l.s.NumLeafNodes() > 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.read || l.anyTenant || l.tenants[tenant]
}
