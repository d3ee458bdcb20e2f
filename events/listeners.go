package events

import (
	"fmt"

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
// Only a server in acld's process can be asked (Account.Interest reads its subscription
// list): with an external server or cluster the feed derives everything, as acld cannot tell.
// Nobody else can read ACL_CHANGES through JetStream: the stream lives in StoreAccount, whose
// only user is acld (Layout), and callers import the republished subjects, not its API.
//
// Each answer reads the account's subscription list under its read lock, without adding to
// its cache: a few hundred nanoseconds. Safe for concurrent use.
type ChangesListeners struct {
	acc *server.Account
}

// NewChangesListeners asks s, a server with acld's accounts (Layout).
func NewChangesListeners(s *server.Server) (*ChangesListeners, error) {
	acc, err := s.LookupAccount(StoreAccount)
	if err != nil {
		return nil, fmt.Errorf("events: change feed listeners: account %s: %w", StoreAccount, err)
	}
	return &ChangesListeners{acc: acc}, nil
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
