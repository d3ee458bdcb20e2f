package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// The identity file (--auth FILE) lists the services that may call acld: JSON, read strictly,
// documented in the README ("Security"). Each identity has credentials for NATS (a public
// nkey, or a user with a bcrypt password hash) and for HTTP (the SHA-256 of a bearer token),
// and what it may say: tenants, commands, queries, actors ("*" = all; actors "*" = any principal
// of its tenants, never system), whether it may act as system, and whether it may read the event
// stream. Secrets are never in the file: nkeys sign a challenge, passwords and tokens are hashes.
//
//	{"identities":[{"name":"billing",
//	  "nats":{"nkey":"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"},
//	  "http":{"token_sha256":"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"},
//	  "tenants":["acme"],"commands":["RegisterRecord","UpdateRecord"],"queries":["check","visible"],
//	  "actors":["billing-bot"],"system":false,"read_log":false}]}

type authFile struct {
	Identities []identityEntry `json:"identities"`
}

type identityEntry struct {
	Name     string     `json:"name"`
	NATS     *natsCreds `json:"nats"`
	HTTP     *httpCreds `json:"http"`
	Tenants  []string   `json:"tenants"`
	Commands []string   `json:"commands"`
	Queries  []string   `json:"queries"`
	Actors   []string   `json:"actors"`
	System   bool       `json:"system"`
	ReadLog  bool       `json:"read_log"`
}

type natsCreds struct {
	Nkey     string `json:"nkey"`
	User     string `json:"user"`
	Password string `json:"password"` // a bcrypt hash ("$2a$..."): `acld auth password` makes one
}

type httpCreds struct {
	TokenSHA256 string `json:"token_sha256"` // `acld auth token` makes a token and this hash
}

// Auth is the loaded identity file: who a request comes from, over NATS and HTTP.
type Auth struct {
	callers map[string]*aggregates.Caller
	tokens  []tokenEntry
	nats    []events.Caller
}

type tokenEntry struct {
	hash   [sha256.Size]byte
	caller *aggregates.Caller
}

// LoadAuth reads and checks an identity file; queries are the query names acld serves, so that
// a typo in a list is refused at start rather than silently granting nothing.
func LoadAuth(path string, queries []string) (*Auth, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--auth: %w", err)
	}
	var f authFile
	if err := aggregates.DecodeStrict(path, raw, &f); err != nil {
		return nil, fmt.Errorf("--auth: %s", err.Message)
	}
	if len(f.Identities) == 0 {
		return nil, fmt.Errorf("--auth %s: no identities; a server nobody may call is not useful", path)
	}
	a := &Auth{callers: map[string]*aggregates.Caller{}, nats: []events.Caller{}} // non-nil: no anonymous caller
	for i, id := range f.Identities {
		where := fmt.Sprintf("--auth %s: identity %d (%q)", path, i+1, id.Name)
		if err := id.check(queries); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if a.callers[id.Name] != nil {
			return nil, fmt.Errorf("%s: the name is listed twice", where)
		}
		c := &aggregates.Caller{Name: id.Name, Tenants: id.Tenants, Commands: id.Commands, Queries: id.Queries,
			Actors: id.Actors, System: id.System}
		a.callers[id.Name] = c
		if id.HTTP != nil {
			h, _ := hex.DecodeString(id.HTTP.TokenSHA256)
			var e tokenEntry
			copy(e.hash[:], h)
			e.caller = c
			for _, t := range a.tokens {
				if t.hash == e.hash {
					return nil, fmt.Errorf("%s: its token is also %q's", where, t.caller.Name)
				}
			}
			a.tokens = append(a.tokens, e)
		}
		if id.NATS != nil {
			a.nats = append(a.nats, id.natsCaller())
		}
	}
	return a, nil
}

// natsCaller is the identity's NATS side, for the server's accounts (id.NATS set).
func (id identityEntry) natsCaller() events.Caller {
	c := events.Caller{Name: id.Name, Nkey: id.NATS.Nkey, User: id.NATS.User, Password: id.NATS.Password, ReadLog: id.ReadLog}
	// The change feed tells what queries would: whoever may ask any query about a tenant may
	// follow its changes, and nobody else receives them (NATS subscribe permissions).
	if len(id.Queries) > 0 {
		c.Changes = id.Tenants
	}
	return c
}

func (id identityEntry) check(queries []string) error {
	if !events.ValidToken(id.Name) {
		return errors.New("a name is 1 to 64 of A-Z a-z 0-9 _ -")
	}
	if id.NATS == nil && id.HTTP == nil {
		return errors.New("no credentials: give nats, http or both")
	}
	if n := id.NATS; n != nil {
		if err := id.natsCaller().Validate(); err != nil {
			return fmt.Errorf("nats: %w", err)
		}
		if n.Password != "" && !strings.HasPrefix(n.Password, "$2") {
			return errors.New("nats: password must be a bcrypt hash (acld auth password makes one), never the password itself")
		}
	}
	if h := id.HTTP; h != nil {
		if b, err := hex.DecodeString(h.TokenSHA256); err != nil || len(b) != sha256.Size {
			return errors.New("http: token_sha256 must be 64 hex digits (acld auth token makes a token and its hash)")
		}
	}
	for _, t := range id.Tenants {
		if t != aggregates.All && !events.ValidToken(t) {
			return fmt.Errorf("tenants: %q is not a tenant id", t)
		}
	}
	for _, c := range id.Commands {
		if c != aggregates.All && !slices.Contains(aggregates.CommandNames, c) {
			return fmt.Errorf("commands: no command %q; the commands are %s", c, strings.Join(aggregates.CommandNames, ", "))
		}
	}
	for _, q := range id.Queries {
		if q != aggregates.All && !slices.Contains(queries, q) {
			return fmt.Errorf("queries: no query %q; the queries are %s", q, strings.Join(queries, ", "))
		}
	}
	for _, p := range id.Actors {
		if p == aggregates.SystemActor {
			return errors.New(`actors: "system" is not an actor to list; set "system": true`)
		}
		if p != aggregates.All && !events.ValidToken(p) {
			return fmt.Errorf("actors: %q is not a principal id", p)
		}
	}
	return nil
}

// NATSCallers are the identities with NATS credentials, for the server's accounts.
func (a *Auth) NATSCallers() []events.Caller { return a.nats }

// IdentifyNATS names the caller of a NATS request from the account the server stamped on it.
// Without an identity file (a nil Auth) every caller is the anonymous one, which may say
// anything. With one, a request that crossed no import is refused: it came from the store
// account itself, where only acld belongs (and acld gives its own commands in process), or from
// a server not laid out by `acld nats-config`, on which NATS could not say who asks: failing
// closed keeps such a server from silently bypassing every identity.
func (a *Auth) IdentifyNATS(h nats.Header) (*aggregates.Caller, error) {
	name, ok := events.RequestCaller(h)
	if a == nil {
		return anonymous, nil
	}
	if !ok {
		return nil, aggregates.Errorf(aggregates.CodeUnauthenticated,
			"the request names no caller account (no Nats-Request-Info from nats-server): with --auth, callers connect with their identity's credentials to a server laid out by acld nats-config")
	}
	if c := a.callers[name]; c != nil {
		return c, nil
	}
	return nil, aggregates.Errorf(aggregates.CodeUnauthenticated,
		"the request came from NATS account %s%s, which is no identity of the --auth file", events.CallerAccountPrefix, name)
}

var anonymous = aggregates.Unrestricted(events.AnonymousCaller)

// AuthenticateHTTP names the caller of an HTTP request by its bearer token. The token's
// SHA-256 is compared with every identity's in constant time, so the time taken says nothing
// about how close a guess was. Without an identity file every request is the anonymous caller.
func (a *Auth) AuthenticateHTTP(r *http.Request) (*aggregates.Caller, error) {
	if a == nil {
		return anonymous, nil
	}
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return nil, aggregates.Errorf(aggregates.CodeUnauthenticated, "no credentials: send the header Authorization: Bearer <token>")
	}
	sum := sha256.Sum256([]byte(token))
	var found *aggregates.Caller
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].hash[:]) == 1 {
			found = a.tokens[i].caller
		}
	}
	if found == nil {
		return nil, aggregates.Errorf(aggregates.CodeUnauthenticated, "the bearer token is no identity's")
	}
	return found, nil
}

// NewToken makes a bearer token (32 random bytes) and the hash the identity file stores.
func NewToken() (token, hash string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	token = "acl_" + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:])
}
