package events

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// The NATS layout that makes acld the only writer of its stream, in every mode (SPEC section 5,
// "Callers"). NATS accounts are separate subject spaces:
//
//   - StoreAccount ("ACL") holds the streams and only the owner's user (acld). It exports the
//     command and query services, and the read-only JetStream API of ACL_EVENTS: stream info,
//     direct and stored message gets, and consumers (next, info, delete; made through the
//     owner, pull consumers only: readers.go).
//   - Each caller has an account of its own, CallerAccountPrefix+name. It imports those
//     services and nothing else. An event published there reaches no stream: there is none in
//     that account, and a JetStream publish or stream call finds no JetStream to answer it.
//     The caller's user may publish only on the command and query subjects (and, with
//     ReadLog, the imported read API), and subscribe only to its inboxes: it cannot take
//     acld's part by subscribing to the command subjects. One account per caller keeps each
//     caller's inboxes, and so its answers, out of the others' reach.
//   - Without identities (no --auth) the one caller is AnonymousCaller, which every
//     connection without credentials is, and which may read the log.
//
// The server stamps every request that crosses an import with a Nats-Request-Info header
// naming the account it came from, replacing whatever the client wrote there: RequestCaller
// reads the caller's identity from it, and nobody can claim another's.

// Account names of the layout.
const (
	StoreAccount        = "ACL"
	CallerAccountPrefix = "caller-"
	// AnonymousCaller is the identity of connections without credentials when no identities
	// are configured.
	AnonymousCaller = "anonymous"
)

// Caller is one service identity's NATS side.
type Caller struct {
	Name string // the identity (1 to 64 of A-Z a-z 0-9 _ -); its account is CallerAccountPrefix+Name
	// Credentials: a public user nkey, or a user and password (a bcrypt hash "$2a$..." is
	// compared as such by nats-server, so the file need not hold the password).
	Nkey     string
	User     string
	Password string
	// ReadLog lets the caller read the event stream (stream info, message gets, its own
	// consumers): auditors replaying history with their own tools. Nobody but the owner
	// writes it.
	ReadLog bool
	// Changes are the tenants whose change feed (ChangesSubject) the caller may subscribe to;
	// "*" is every tenant. acld gives it the tenants the identity may query.
	Changes []string
}

// Layout is the accounts configuration of a server that acld uses: the owner's public nkey
// and the callers (nil: the anonymous caller).
type Layout struct {
	Owner   string
	Callers []Caller
	// Stream is the event stream ("" = DefaultStream).
	Stream string
}

// readAPI is the read-only JetStream API of a stream that callers may be granted, with
// whether an answer is a stream of messages (a pull consumer's next). Making a consumer is
// not among them: it goes through the owner (readerAPI).
func readAPI(stream string) (single []string, streamed []string) {
	single = []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.INFO." + stream + ".>",
		"$JS.API.CONSUMER.DELETE." + stream + ".>",
	}
	streamed = []string{"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>"}
	return single, streamed
}

// readerAPI are the consumer-making subjects of a stream: each pair is the subject a caller
// publishes on (JetStream's own) and the store account's subject it is mapped to, which the
// owner answers (ServeReaders: pull consumers only).
func readerAPI(stream string) [][2]string {
	return [][2]string{
		{consumerCreateAPI + "." + stream, readerCreate + "." + stream},
		{consumerCreateAPI + "." + stream + ".>", readerCreate + "." + stream + ".>"},
	}
}

// Config is the accounts block in nats-server's configuration syntax: what the embedded
// server runs with, and what an external server or cluster must include (acld prints it with
// `acld nats-config`).
func (l Layout) Config() string {
	stream := l.Stream
	if stream == "" {
		stream = DefaultStream
	}
	callers := l.Callers
	anonymous := callers == nil
	if anonymous {
		callers = []Caller{{Name: AnonymousCaller, User: AnonymousCaller, ReadLog: true, Changes: []string{"*"}}}
	}
	single, streamed := readAPI(stream)
	var b strings.Builder
	b.WriteString("accounts {\n")
	fmt.Fprintf(&b, "  %s {\n    jetstream: enabled\n", StoreAccount)
	fmt.Fprintf(&b, "    # acld, the only writer of the event stream: no other user belongs to this account.\n")
	fmt.Fprintf(&b, "    users: [{nkey: %s}]\n", q(l.Owner))
	b.WriteString("    exports: [\n")
	fmt.Fprintf(&b, "      {service: %s}\n      {service: %s}\n", q(CommandSubjects), q(QuerySubjects))
	for _, s := range single {
		fmt.Fprintf(&b, "      {service: %s}\n", q(s))
	}
	for _, s := range streamed {
		fmt.Fprintf(&b, "      {service: %s, response_type: stream}\n", q(s))
	}
	for _, s := range readerAPI(stream) {
		fmt.Fprintf(&b, "      {service: %s}\n", q(s[1]))
	}
	// The change feed is a stream export: the changes stream republishes each change once on
	// it, and a caller receives those of the tenants its subscribe permission names.
	fmt.Fprintf(&b, "      {stream: %s}\n", q(ChangesPrefix+".>"))
	b.WriteString("    ]\n  }\n")
	for _, c := range callers {
		fmt.Fprintf(&b, "  %s {\n", q(CallerAccountPrefix+c.Name))
		pub := []string{CommandSubjects, QuerySubjects}
		if c.ReadLog {
			pub = append(pub, single...)
			pub = append(pub, streamed...)
			for _, s := range readerAPI(stream) {
				pub = append(pub, s[0])
			}
		}
		sub := []string{"_INBOX.>"}
		for _, t := range c.Changes {
			if t == "*" {
				sub = append(sub, ChangesPrefix+".>")
			} else {
				sub = append(sub, ChangesPrefix+"."+t+".>")
			}
		}
		perms := fmt.Sprintf("permissions: {publish: {allow: %s}, subscribe: {allow: %s}}", confList(pub), confList(sub))
		switch {
		case c.Nkey != "":
			fmt.Fprintf(&b, "    users: [{nkey: %s, %s}]\n", q(c.Nkey), perms)
		default:
			fmt.Fprintf(&b, "    users: [{user: %s, password: %s, %s}]\n", q(c.User), q(c.Password), perms)
		}
		b.WriteString("    imports: [\n")
		fmt.Fprintf(&b, "      {service: {account: %s, subject: %s}}\n", StoreAccount, q(CommandSubjects))
		fmt.Fprintf(&b, "      {service: {account: %s, subject: %s}}\n", StoreAccount, q(QuerySubjects))
		// The read API is imported by every caller: $JS.API.INFO from the store account keeps
		// the server from giving the caller's account JetStream imports of its own, which
		// would answer "not enabled" in place of the store's. Permissions decide who may use it.
		for _, s := range append(single, streamed...) {
			fmt.Fprintf(&b, "      {service: {account: %s, subject: %s}}\n", StoreAccount, q(s))
		}
		for _, s := range readerAPI(stream) {
			fmt.Fprintf(&b, "      {service: {account: %s, subject: %s}, to: %s}\n", StoreAccount, q(s[1]), q(s[0]))
		}
		fmt.Fprintf(&b, "      {stream: {account: %s, subject: %s}}\n", StoreAccount, q(ChangesPrefix+".>"))
		b.WriteString("    ]\n  }\n")
	}
	b.WriteString("}\n")
	if anonymous {
		fmt.Fprintf(&b, "no_auth_user: %s\n", q(AnonymousCaller))
	}
	return b.String()
}

// q quotes a string for nats-server's configuration syntax, which has no \u escapes. The
// strings are subjects, ids, nkeys and bcrypt hashes; Validate refuses quotes and backslashes.
func q(s string) string { return `"` + s + `"` }

func confList(ss []string) string {
	qs := make([]string, len(ss))
	for i, s := range ss {
		qs[i] = q(s)
	}
	return "[" + strings.Join(qs, ", ") + "]"
}

// Validate checks what the configuration will be made of.
func (l Layout) Validate() error {
	if !nkeysValidUser(l.Owner) {
		return fmt.Errorf("%w: owner %q is not a public user nkey", ErrConfig, l.Owner)
	}
	seen := map[string]bool{}
	for _, c := range l.Callers {
		if err := c.Validate(); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("%w: caller %q is listed twice", ErrConfig, c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// Validate checks a caller's name and NATS credentials.
func (c Caller) Validate() error {
	switch {
	case !ValidToken(c.Name):
		return fmt.Errorf("%w: caller %q: a name is 1 to 64 of A-Z a-z 0-9 _ -", ErrConfig, c.Name)
	case c.Nkey != "" && (c.User != "" || c.Password != ""):
		return fmt.Errorf("%w: caller %q: give an nkey or a user and password, not both", ErrConfig, c.Name)
	case c.Nkey != "" && !nkeysValidUser(c.Nkey):
		return fmt.Errorf("%w: caller %q: %q is not a public user nkey (U...)", ErrConfig, c.Name, c.Nkey)
	case slices.ContainsFunc(c.Changes, func(t string) bool { return t != "*" && !ValidToken(t) }):
		return fmt.Errorf("%w: caller %q: changes %q: a tenant is 1 to 64 of A-Z a-z 0-9 _ -", ErrConfig, c.Name, c.Changes)
	case c.Nkey == "" && (c.User == "" || c.Password == ""):
		return fmt.Errorf("%w: caller %q: NATS credentials need an nkey, or a user and a password", ErrConfig, c.Name)
	case strings.ContainsAny(c.User+c.Password, "\"\\\n"):
		return fmt.Errorf("%w: caller %q: user and password may not hold quotes, backslashes or newlines", ErrConfig, c.Name)
	}
	return nil
}

func nkeysValidUser(k string) bool { return nkeys.IsValidPublicUserKey(k) }

// Subjects of the services acld answers.
const (
	CommandSubjects = "acl.commands.>"
	QuerySubjects   = "acl.queries.>"
)

// requestInfoHeader is set by nats-server on every message that crosses a service import.
const requestInfoHeader = "Nats-Request-Info"

// RequestCaller names the caller whose request m is, from the account nats-server stamped on
// it. ok is false for a request that crossed no import: one from the store account itself
// (acld's own connection), or from a server whose accounts are not laid out as Layout says.
func RequestCaller(h nats.Header) (name string, ok bool) {
	raw := h.Get(requestInfoHeader)
	if raw == "" {
		return "", false
	}
	var info struct {
		Account string `json:"acc"`
	}
	if json.Unmarshal([]byte(raw), &info) != nil {
		return "", false
	}
	name, ok = strings.CutPrefix(info.Account, CallerAccountPrefix)
	return name, ok && name != ""
}

// Owner is the key of the event store's only writer. acld makes a fresh one at every start of
// the embedded server (it never leaves the process), or reads one from a seed file for an
// external server whose configuration names its public key.
type Owner struct {
	kp  nkeys.KeyPair
	pub string
}

// NewOwner makes a fresh owner key.
func NewOwner() (*Owner, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("events: owner key: %w", err)
	}
	return ownerOf(kp)
}

// OwnerFromSeed reads an owner key from a user nkey seed ("SU...").
func OwnerFromSeed(seed []byte) (*Owner, error) {
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return nil, fmt.Errorf("%w: owner seed: %v", ErrConfig, err)
	}
	return ownerOf(kp)
}

func ownerOf(kp nkeys.KeyPair) (*Owner, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("events: owner key: %w", err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("%w: owner key %s is not a user key (it starts with U)", ErrConfig, pub)
	}
	return &Owner{kp: kp, pub: pub}, nil
}

// PublicKey is what a server's configuration names (Layout.Owner).
func (o *Owner) PublicKey() string { return o.pub }

// Option authenticates a connection as the owner.
func (o *Owner) Option() nats.Option {
	return nats.Nkey(o.pub, func(nonce []byte) ([]byte, error) { return o.kp.Sign(nonce) })
}

// moveStoreAccount moves a store written before the layout (the stream in the global account
// "$G") into the store account, once, so that an upgraded server keeps its history.
func moveStoreAccount(dir string) error {
	old := filepath.Join(dir, "jetstream", "$G")
	now := filepath.Join(dir, "jetstream", StoreAccount)
	if _, err := os.Stat(filepath.Join(old, "streams")); err != nil {
		return nil
	}
	if _, err := os.Stat(now); err == nil {
		return fmt.Errorf("%w: %s and %s both hold streams; keep one", ErrConfig, old, now)
	}
	if err := os.Rename(old, now); err != nil {
		return fmt.Errorf("events: move the store into account %s: %w", StoreAccount, err)
	}
	return nil
}
