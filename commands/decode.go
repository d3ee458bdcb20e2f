package commands

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// ParseSubject splits acl.commands.<tenant>.<CommandName>. A subject with another shape, a
// tenant that is not a valid id, or an unknown command name is invalid_argument.
func ParseSubject(subject string) (tenant, name string, err error) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 2 {
		return "", "", invalid("subject %q is not %s.<tenant>.<CommandName>", subject, SubjectPrefix)
	}
	tenant, name = parts[0], parts[1]
	if !events.ValidToken(tenant) {
		return "", "", invalid("tenant %q in the subject must be 1 to 64 of A-Z a-z 0-9 _ -", tenant)
	}
	if !knownCommand(name) {
		return "", "", invalid("unknown command %q; the commands are %s", name, strings.Join(aggregates.CommandNames, ", "))
	}
	return tenant, name, nil
}

// commandNames are the names aggregates.NewCommand knows, looked up without making a command
// (the bulk path asks for every command of a batch, and its metrics again).
var commandNames = func() map[string]bool {
	m := make(map[string]bool, len(aggregates.CommandNames))
	for _, n := range aggregates.CommandNames {
		if aggregates.NewCommand(n) != nil {
			m[n] = true
		}
	}
	return m
}()

// knownCommand reports whether aggregates.NewCommand knows name.
func knownCommand(name string) bool {
	return commandNames[name] || aggregates.NewCommand(name) != nil
}

// DecodeCommand reads a command from its subject and JSON body, strictly (aggregates.DecodeBody,
// which decodes as aggregates.DecodeStrict: names matched exactly, unknown or repeated fields
// and trailing data rejected);
// a command_id that is not a UUID and an actor that is neither system nor a valid id are
// invalid_argument. The tenant comes from the subject. The rest of the body is checked by
// aggregates.Validate (Decide's first stage).
func DecodeCommand(subject string, body []byte) (aggregates.Command, error) {
	tenant, name, err := ParseSubject(subject)
	if err != nil {
		return nil, err
	}
	return decodeBody(tenant, name, body)
}

// decodeBody is DecodeCommand once the subject is parsed.
func decodeBody(tenant, name string, body []byte) (aggregates.Command, error) {
	cmd, err := aggregates.DecodeBody("body", name, body)
	if err != nil {
		err.Op = name
		return nil, err
	}
	b := cmd.Base()
	b.Tenant = tenant
	if err := checkBase(b); err != nil {
		err.Op = name
		return nil, err
	}
	return cmd, nil
}

// checkBase checks what every command carries: a UUID command_id (canonical form, so that it
// is the same message id however it was written) and a syntactically valid actor.
func checkBase(b *aggregates.CommandBase) *aggregates.Error {
	if b.CommandID == "" {
		return invalid("command_id is required: a UUID, the same for every retry of one command")
	}
	if u, err := uuid.Parse(b.CommandID); err != nil || u.String() != strings.ToLower(b.CommandID) {
		return invalid("command_id %.60q is not a UUID like 0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10", b.CommandID)
	}
	if b.Actor == "" {
		return invalid("actor is required")
	}
	if b.Actor != aggregates.SystemActor && !events.ValidToken(b.Actor) {
		return invalid("actor %.70q must be system or a principal id (1 to 64 of A-Z a-z 0-9 _ -)", b.Actor)
	}
	return nil
}

// Hash is the digest of a command that tells a retry (same hash) from another command reusing
// its id (conflict). It hashes the command's name and canonical JSON (the decoded struct, so
// field order and spacing do not matter), not the raw bytes.
func Hash(cmd aggregates.Command) string {
	// The digest of json.Marshal's bytes, computed without copying them out of an encoder:
	// every command of an import is hashed.
	buf := hashBufs.Get().(*bytes.Buffer)
	defer hashBufs.Put(buf)
	buf.Reset()
	buf.WriteString(cmd.Name())
	buf.WriteByte(0)
	if b, ok := appendCanonical(buf.AvailableBuffer(), cmd); ok {
		buf.Write(b) // json.Marshal's bytes, written without reflection (hash_fast.go)
	} else {
		_ = json.NewEncoder(buf).Encode(cmd) // commands are plain data: cannot fail
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))) // Encode ends with a newline
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:])
}

var hashBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}
