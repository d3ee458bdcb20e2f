package aggregates

import (
	"fmt"
	"slices"
	"strings"
)

// CodeUnauthenticated: a request without credentials, or with credentials nobody holds
// (SPEC section 5, "Callers"; HTTP 401).
const CodeUnauthenticated Code = "unauthenticated"

// All is the list entry that grants every tenant, command, query or actor.
const All = "*"

// Caller is a service identity: what one service calling acld may say (SPEC section 5,
// "Callers"). The actor stays in each command's body, since a service acts for the person
// using it, but only within its identity. A nil *Caller is acld itself, unrestricted.
type Caller struct {
	Name     string
	Tenants  []string // tenants it may address; All = every tenant
	Commands []string // command names it may send; All = every command
	Queries  []string // query names it may ask; All = every query
	// Actors are the actors its commands may name; All = any principal of its tenants. Acting
	// as system is System, never implied by All.
	Actors []string
	System bool
}

// Unrestricted is a caller that may say anything: the anonymous caller of a server without
// identities.
func Unrestricted(name string) *Caller {
	all := []string{All}
	return &Caller{Name: name, Tenants: all, Commands: all, Queries: all, Actors: all, System: true}
}

// Via is the name recorded in the events a caller's request writes (the envelope's via).
func (c *Caller) Via(self string) string {
	if c == nil {
		return self
	}
	return c.Name
}

// MayAct says whether the caller may name actor in a command's body, once the body is read
// (MayTenantCommand is asked before). A refusal is forbidden, naming the identity and what it
// lacks, as every refusal here.
func (c *Caller) MayAct(actor string) *Error {
	if c == nil {
		return nil
	}
	if actor == SystemActor {
		if !c.System {
			return c.refuse("may not act as system")
		}
		return nil
	}
	if !grants(c.Actors, actor) {
		return c.refuse("may not act as %q (its actors: %s)", actor, listed(c.Actors))
	}
	return nil
}

// MayQuery says whether the caller may ask query name about tenant.
func (c *Caller) MayQuery(tenant, name string) *Error {
	if c == nil {
		return nil
	}
	if err := c.mayTenant(tenant); err != nil {
		return err
	}
	if !grants(c.Queries, name) {
		return c.refuse("may not ask %s (its queries: %s)", name, listed(c.Queries))
	}
	return nil
}

// MayTenantCommand says whether the caller may send command name about tenant: what is known
// before the body is read.
func (c *Caller) MayTenantCommand(tenant, name string) *Error {
	if c == nil {
		return nil
	}
	if err := c.mayTenant(tenant); err != nil {
		return err
	}
	if !grants(c.Commands, name) {
		return c.refuse("may not send %s (its commands: %s)", name, listed(c.Commands))
	}
	return nil
}

// MayHoldReadSide says whether the caller may mark a batch as part of a bulk load, which holds
// the read side of every tenant behind the stream while the load lasts (commands.BatchRequest's
// Load): only a caller that may address every tenant.
func (c *Caller) MayHoldReadSide() *Error {
	if c == nil || grants(c.Tenants, All) {
		return nil
	}
	return c.refuse("may not mark a batch as a bulk load, which holds every tenant's read side (its tenants: %s); send it without load", listed(c.Tenants))
}

func (c *Caller) mayTenant(tenant string) *Error {
	if !grants(c.Tenants, tenant) {
		return c.refuse("may not address tenant %q (its tenants: %s)", tenant, listed(c.Tenants))
	}
	return nil
}

func (c *Caller) refuse(format string, args ...any) *Error {
	return &Error{Code: CodeForbidden, Message: fmt.Sprintf("identity %q ", c.Name) + fmt.Sprintf(format, args...)}
}

func grants(list []string, name string) bool {
	return slices.Contains(list, All) || slices.Contains(list, name)
}

// listed shows a caller's list in a refusal: short lists whole, long ones cut.
func listed(list []string) string {
	switch {
	case len(list) == 0:
		return "none"
	case len(list) > 8:
		return strings.Join(list[:8], ", ") + fmt.Sprintf(" and %d more", len(list)-8)
	}
	return strings.Join(list, ", ")
}
