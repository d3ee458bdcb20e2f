package aggregates

import "github.com/acl-es/acl/events"

// DecodeBody reads the JSON body of command name (one NewCommand knows) exactly as
// DecodeStrict does into NewCommand(name): the same command, or the same refusal. An import
// carries 200,000 bodies of a few kinds, and DecodeStrict (reflection over the struct, its
// checks of names and duplicates) was 4.8 % of acld's CPU in a held import (README, Round 16:
// import). fastBody reads those kinds with events.Fields and accepts only bodies it
// understands completely; on anything else (an unknown, differently cased or repeated field,
// an escape, a value of another kind, trailing data) it gives up and DecodeStrict decodes the
// body into a fresh command, so every refusal, and its message, is DecodeStrict's.
// FuzzDecodeBody checks that both agree on everything fastBody accepts.
func DecodeBody(what, name string, body []byte) (Command, *Error) {
	if cmd := NewCommand(name); fastBody(body, cmd) {
		return cmd, nil
	}
	cmd := NewCommand(name) // fastBody may have set a part of the other one
	if err := DecodeStrict(what, body, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// The field names of the bodies fastBody reads: CommandBase's, then the command's own.
var (
	keysBase           = []string{"command_id", "actor", "dry_run"}
	keysRegisterRecord = append(append([]string(nil), keysBase...), events.RecordBodyKeys()...)
	keysRegisterPrinc  = append(append([]string(nil), keysBase...), "principal", "kind", "email", "client", "units")
	keysAssignRole     = append(append([]string(nil), keysBase...), "principal", "role")
	keysSetAccessLevel = append(append([]string(nil), keysBase...), "principal", "level")
)

// fastBody decodes body into cmd when cmd is of a kind it reads and body has a shape it
// understands completely, or reports false (cmd then holds a part of the body).
func fastBody(body []byte, cmd Command) bool {
	f := events.ScanFields(body)
	base := func(b *CommandBase, i int) bool {
		switch i {
		case 0:
			return f.String(&b.CommandID)
		case 1:
			return f.String(&b.Actor)
		}
		return f.Bool(&b.DryRun)
	}
	// baseAnd reads field i of a body of CommandBase's fields and two strings.
	baseAnd := func(i int, b *CommandBase, s1, s2 *string) bool {
		switch i {
		case 0, 1, 2:
			return base(b, i)
		case 3:
			return f.String(s1)
		}
		return f.String(s2)
	}
	var ok bool
	switch c := cmd.(type) {
	case *RegisterRecord:
		ok = f.Object(keysRegisterRecord, func(i int) bool {
			if i < len(keysBase) {
				return base(&c.CommandBase, i)
			}
			return f.RecordField(&c.RecordBody, i-len(keysBase))
		})
	case *RegisterPrincipal:
		ok = f.Object(keysRegisterPrinc, func(i int) bool {
			switch i {
			case 0, 1, 2:
				return base(&c.CommandBase, i)
			case 3:
				return f.String(&c.Principal)
			case 4:
				return f.String(&c.Kind)
			case 5:
				return f.String(&c.Email)
			case 6:
				return f.String(&c.Client)
			}
			return f.Units(&c.Units)
		})
	case *AssignRole:
		ok = f.Object(keysAssignRole, func(i int) bool { return baseAnd(i, &c.CommandBase, &c.Principal, &c.Role) })
	case *SetAccessLevel:
		ok = f.Object(keysSetAccessLevel, func(i int) bool { return baseAnd(i, &c.CommandBase, &c.Principal, &c.Level) })
	default:
		return false
	}
	return ok && f.End()
}
