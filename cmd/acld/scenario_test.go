package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/nats-io/nats.go"
)

// The seed-rule scenarios are data: testdata/scenarios/<preset>.txt, one "## <rule id>" section
// per rule, each run against the whole stack (commands over NATS, answers from the projections)
// in a fresh tenant. The language, one statement a line:
//
//	tenant <id> <preset>                      CreateTenant as system; admin "admin" at full
//	[as <actor>] do <Command> <json>          a command that must succeed (actor: admin)
//	[as <actor>] fail <code> <Command> <json> a command that must fail with code
//	system <Command> <json>                   a command as the system actor
//	unit <kind>:<id>                          DefineUnit
//	user <id> <kind> <level> <roles|-> [client=c] [units=kind:id,...]
//	record <type>/<id> [client=c] [units=k:id,..] [owner=p] [assign=p:rel,..] [links=t/id,..]
//	mark <name>                               remember the current sequence as a moment
//	check <p> <perm> [<type>/<id>] [as_of=<mark>] -> allowed|denied [reason~<text>]
//	visible <p> <type>[.<action>] -> <ids,...|->
//	principals <type>/<id> <perm> -> <ids|->
//	recipients <type>/<id> -> <ids|->
//	dry <Command> <json> -> ok|<code>         a dry run (as admin): its answer, which must write
//	                                          nothing (the read model's sequence stays)
//	effects <p,...|->                         the principals the last dry run's effects name
//	effect <p> granted=<perm@scope,..|-> revoked=<..|->
//	effect <p> visible <type> gained=<ids|-> lost=<ids|->
//	watch <p>                                 follow p's change feed from now on
//	change <p> <type> gained=<ids|-> lost=<ids|->
//	                                          p's next change message of the last command (its
//	                                          seq; earlier ones skipped) changes type's records so
//
// Every query passes the last command's sequence as min_seq: read-your-writes is exercised by
// every line.

func runScenario(t *testing.T, file, rule string) {
	t.Helper()
	lines := scenarioSection(t, filepath.Join("testdata", "scenarios", file), rule)
	s := &scenario{t: t, nc: startStack(t), marks: map[string]uint64{}, watches: map[string]*nats.Subscription{}}
	for _, l := range lines {
		s.line = l
		s.exec(l)
	}
}

func scenarioSection(t *testing.T, path, rule string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "## ") {
			id, _, _ := strings.Cut(strings.TrimPrefix(l, "## "), " ")
			in = id == rule
			continue
		}
		if in && l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no section %q", path, rule)
	}
	return out
}

type scenario struct {
	t       *testing.T
	nc      *nats.Conn
	tenant  string
	seq     uint64
	marks   map[string]uint64
	watches map[string]*nats.Subscription
	dryRun  *dryAnswer // the last dry run's answer
	line    string
}

// change reads p's next change message and compares it with the expectation.
func (s *scenario) change(f []string) {
	s.t.Helper()
	sub := s.watches[f[0]]
	if sub == nil {
		s.fatalf("change of %s, who is not watched", f[0])
	}
	type change struct {
		Seq       uint64 `json:"seq"`
		Principal string `json:"principal"`
		Visible   map[string]struct {
			Gained []string `json:"gained"`
			Lost   []string `json:"lost"`
		} `json:"visible"`
	}
	// Messages of earlier commands may still arrive after watch subscribed: skip them.
	var msg *nats.Msg
	var c change
	for c.Seq < s.seq {
		var err error
		if msg, err = sub.NextMsg(10 * time.Second); err != nil {
			s.fatalf("no change message for %s: %v", f[0], err)
		}
		c = change{}
		if err := json.Unmarshal(msg.Data, &c); err != nil {
			s.fatalf("change message: %v: %s", err, msg.Data)
		}
	}
	if c.Seq != s.seq || c.Principal != f[0] {
		s.fatalf("change message %s, want seq %d for %s", msg.Data, s.seq, f[0])
	}
	list := func(ids []string) string {
		if len(ids) == 0 {
			return "-"
		}
		return strings.Join(ids, ",")
	}
	v := c.Visible[f[1]]
	if got := "gained=" + list(v.Gained) + " lost=" + list(v.Lost); got != strings.Join(f[2:], " ") {
		s.fatalf("change of %s on %s: %s, want %s (message %s)", f[0], f[1], got, strings.Join(f[2:], " "), msg.Data)
	}
}

func (s *scenario) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s\n  at: %s", fmt.Sprintf(format, args...), s.line)
}

func (s *scenario) exec(l string) {
	s.t.Helper()
	actor := "admin"
	if rest, ok := strings.CutPrefix(l, "as "); ok {
		actor, l, _ = strings.Cut(rest, " ")
	}
	verb, rest, _ := strings.Cut(l, " ")
	switch verb {
	case "tenant":
		f := strings.Fields(rest)
		s.tenant = f[0]
		s.command("system", "", "CreateTenant", fmt.Sprintf(
			`{"preset":%q,"admin":{"principal":"admin","kind":"staff","email":"admin@%s.test"}}`, f[1], f[0]))
	case "do":
		name, body, _ := strings.Cut(rest, " ")
		s.command(actor, "", name, body)
	case "fail":
		f := strings.SplitN(rest, " ", 3)
		s.command(actor, f[0], f[1], f[2])
	case "system":
		name, body, _ := strings.Cut(rest, " ")
		s.command("system", "", name, body)
	case "unit":
		kind, id, _ := strings.Cut(rest, ":")
		s.command(actor, "", "DefineUnit", fmt.Sprintf(`{"unit":{"kind":%q,"id":%q}}`, kind, id))
	case "user":
		s.user(actor, strings.Fields(rest))
	case "record":
		s.record(actor, strings.Fields(rest))
	case "mark":
		s.marks[rest] = s.seq
	case "check", "visible", "principals", "recipients":
		s.query(verb, rest)
	case "dry":
		s.dry(actor, rest)
	case "effects", "effect":
		s.effect(verb, strings.Fields(rest))
	case "watch":
		sub, err := s.nc.SubscribeSync("acl.changes." + s.tenant + ".principal." + rest)
		if err != nil {
			s.fatalf("watch: %v", err)
		}
		if err := s.nc.Flush(); err != nil {
			s.fatalf("watch: %v", err)
		}
		s.watches[rest] = sub
	case "change":
		s.change(strings.Fields(rest))
	default:
		s.fatalf("unknown statement %q", verb)
	}
}

func (s *scenario) user(actor string, f []string) {
	s.t.Helper()
	id, kind, level, roles := f[0], f[1], f[2], f[3]
	body := map[string]any{"principal": id, "kind": kind, "email": id + "@" + s.tenant + ".test"}
	for _, opt := range f[4:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "client":
			body["client"] = v
		case "units":
			body["units"] = units(v)
		default:
			s.fatalf("unknown user option %q", k)
		}
	}
	s.command(actor, "", "RegisterPrincipal", mustJSON(body))
	if roles != "-" {
		for _, r := range strings.Split(roles, ",") {
			s.command(actor, "", "AssignRole", fmt.Sprintf(`{"principal":%q,"role":%q}`, id, r))
		}
	}
	if level != "disabled" {
		s.command(actor, "", "SetAccessLevel", fmt.Sprintf(`{"principal":%q,"level":%q}`, id, level))
	}
}

func (s *scenario) record(actor string, f []string) {
	s.t.Helper()
	typ, id, _ := strings.Cut(f[0], "/")
	body := map[string]any{"type": typ, "id": id}
	for _, opt := range f[1:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "client", "owner":
			body[k] = v
		case "units":
			body["units"] = units(v)
		case "assign":
			var as []map[string]string
			for _, a := range strings.Split(v, ",") {
				p, rel, _ := strings.Cut(a, ":")
				as = append(as, map[string]string{"principal": p, "relation": rel})
			}
			body["assignees"] = as
		case "links":
			var ls []map[string]string
			for _, a := range strings.Split(v, ",") {
				t, i, _ := strings.Cut(a, "/")
				ls = append(ls, map[string]string{"type": t, "id": i})
			}
			body["links"] = ls
		default:
			s.fatalf("unknown record option %q", k)
		}
	}
	s.command(actor, "", "RegisterRecord", mustJSON(body))
}

func units(v string) []map[string]string {
	var us []map[string]string
	for _, u := range strings.Split(v, ",") {
		k, id, _ := strings.Cut(u, ":")
		us = append(us, map[string]string{"kind": k, "id": id})
	}
	return us
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type commandAnswer struct {
	OK     bool       `json:"ok"`
	Seq    uint64     `json:"seq"`
	Events []string   `json:"events"`
	Error  *wireError `json:"error"`
}

// command sends one command over NATS; wantCode "" means it must succeed.
func (s *scenario) command(actor, wantCode, name, body string) {
	s.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		s.fatalf("bad json in scenario: %v", err)
	}
	m["command_id"] = uuid.Must(uuid.NewV7()).String()
	m["actor"] = actor
	msg, err := s.nc.Request("acl.commands."+s.tenant+"."+name, []byte(mustJSON(m)), 10*time.Second)
	if err != nil {
		s.fatalf("request %s: %v", name, err)
	}
	var a commandAnswer
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		s.fatalf("answer of %s: %v: %s", name, err, msg.Data)
	}
	switch {
	case wantCode == "" && !a.OK:
		s.fatalf("%s failed: %s", name, msg.Data)
	case wantCode != "" && a.OK:
		s.fatalf("%s succeeded, want %s", name, wantCode)
	case wantCode != "" && (a.Error == nil || a.Error.Code != wantCode):
		s.fatalf("%s answered %s, want code %s", name, msg.Data, wantCode)
	}
	// A command that changes nothing answers its aggregate's sequence and no events.
	if a.OK && len(a.Events) > 0 {
		if a.Seq <= s.seq {
			s.fatalf("%s answered seq %d, not after the previous command's %d", name, a.Seq, s.seq)
		}
		s.seq = a.Seq
	}
}

func (s *scenario) query(verb, rest string) {
	s.t.Helper()
	lhs, want, ok := strings.Cut(rest, " -> ")
	if !ok {
		s.fatalf("query without ->")
	}
	f := strings.Fields(lhs)
	body := map[string]any{"min_seq": s.seq}
	ref := func(v string) map[string]string {
		typ, id, _ := strings.Cut(v, "/")
		return map[string]string{"type": typ, "id": id}
	}
	for i := len(f) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(f[i], "as_of="); ok {
			seq, found := s.marks[v]
			if !found {
				s.fatalf("unknown mark %q", v)
			}
			body["as_of"] = seq
			f = slices.Delete(f, i, i+1)
		}
	}
	switch verb {
	case "check":
		body["principal"], body["permission"] = f[0], f[1]
		if len(f) > 2 {
			body["record"] = ref(f[2])
		}
	case "visible":
		typ, action, found := strings.Cut(f[1], ".")
		body["principal"], body["type"] = f[0], typ
		if found {
			body["action"] = action
		}
		body["limit"] = 1000
	case "principals":
		body["record"], body["permission"] = ref(f[0]), f[1]
	case "recipients":
		body["record"] = ref(f[0])
	}
	msg, err := s.nc.Request("acl.queries."+s.tenant+"."+verb, []byte(mustJSON(body)), 10*time.Second)
	if err != nil {
		s.fatalf("query %s: %v", verb, err)
	}
	var a struct {
		Allowed    *bool      `json:"allowed"`
		Reason     string     `json:"reason"`
		IDs        []string   `json:"ids"`
		Principals []string   `json:"principals"`
		Seq        uint64     `json:"seq"`
		Error      *wireError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		s.fatalf("answer of %s: %v: %s", verb, err, msg.Data)
	}
	if a.Error != nil {
		s.fatalf("%s answered error %s: %s", verb, a.Error.Code, a.Error.Message)
	}
	if _, asOf := body["as_of"]; !asOf && a.Seq < s.seq {
		s.fatalf("%s answered seq %d, before min_seq %d", verb, a.Seq, s.seq)
	}
	if verb == "check" {
		wantAllowed, reason, _ := strings.Cut(want, " reason~")
		if a.Allowed == nil || *a.Allowed != (wantAllowed == "allowed") {
			s.fatalf("check answered %s, want %s", msg.Data, wantAllowed)
		}
		if reason != "" && !strings.Contains(a.Reason, reason) {
			s.fatalf("check reason %q does not mention %q", a.Reason, reason)
		}
		return
	}
	got := a.IDs
	if verb != "visible" {
		got = a.Principals
	}
	if got == nil {
		s.fatalf("%s answered null instead of a list: %s", verb, msg.Data)
	}
	wantIDs := []string{}
	if want != "-" {
		wantIDs = strings.Split(want, ",")
	}
	if !slices.Equal(got, wantIDs) {
		s.fatalf("%s answered %v, want %v", verb, got, wantIDs)
	}
}

type dryAnswer struct {
	OK      bool                `json:"ok"`
	DryRun  bool                `json:"dry_run"`
	Seq     uint64              `json:"seq"`
	Events  []json.RawMessage   `json:"events"`
	Effects []aggregates.Effect `json:"effects"`
	Error   *wireError          `json:"error"`
}

// dry sends a command as a dry run and checks its answer, then that nothing was written.
func (s *scenario) dry(actor, rest string) {
	s.t.Helper()
	lhs, want, ok := strings.Cut(rest, " -> ")
	if !ok {
		s.fatalf("dry without ->")
	}
	name, body, _ := strings.Cut(lhs, " ")
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		s.fatalf("bad json in scenario: %v", err)
	}
	m["command_id"], m["actor"], m["dry_run"] = uuid.Must(uuid.NewV7()).String(), actor, true
	msg, err := s.nc.Request("acl.commands."+s.tenant+"."+name, []byte(mustJSON(m)), 10*time.Second)
	if err != nil {
		s.fatalf("request %s: %v", name, err)
	}
	var a dryAnswer
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		s.fatalf("answer of %s: %v: %s", name, err, msg.Data)
	}
	switch {
	case want == "ok" && (!a.OK || !a.DryRun || len(a.Events) == 0 || a.Seq < s.seq):
		s.fatalf("dry run of %s: %s, want ok, dry_run, events and seq at least %d", name, msg.Data, s.seq)
	case want != "ok" && (a.OK || a.Error == nil || a.Error.Code != want):
		s.fatalf("dry run of %s: %s, want code %s", name, msg.Data, want)
	}
	s.dryRun = &a
	// Nothing written: the stream's last sequence is still the last command's.
	info, err := s.nc.Request("$JS.API.STREAM.INFO.ACL_EVENTS", nil, 5*time.Second)
	if err != nil {
		s.fatalf("stream info: %v", err)
	}
	var si struct {
		State struct {
			LastSeq uint64 `json:"last_seq"`
		} `json:"state"`
	}
	if err := json.Unmarshal(info.Data, &si); err != nil || si.State.LastSeq != s.seq {
		s.fatalf("after a dry run the stream's last sequence is %d (%v), want %d", si.State.LastSeq, err, s.seq)
	}
}

// effect checks the last dry run's effects.
func (s *scenario) effect(verb string, f []string) {
	s.t.Helper()
	if s.dryRun == nil {
		s.fatalf("%s before any dry run", verb)
	}
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "-"
		}
		return strings.Join(xs, ",")
	}
	if verb == "effects" {
		var names []string
		for _, e := range s.dryRun.Effects {
			names = append(names, e.Principal)
		}
		if got := list(names); got != f[0] {
			s.fatalf("effects on %s, want %s", got, f[0])
		}
		return
	}
	i := slices.IndexFunc(s.dryRun.Effects, func(e aggregates.Effect) bool { return e.Principal == f[0] })
	if i < 0 {
		s.fatalf("no effect on %s", f[0])
	}
	e := s.dryRun.Effects[i]
	var got string
	if f[1] == "visible" {
		v := e.Visible[f[2]]
		got, f = "gained="+list(v.Gained)+" lost="+list(v.Lost), f[3:]
	} else {
		grants := func(gs []aggregates.GrantUse) string {
			var out []string
			for _, g := range gs {
				out = append(out, g.Permission+"@"+g.Scope)
			}
			slices.Sort(out)
			return list(out)
		}
		got, f = "granted="+grants(e.Granted)+" revoked="+grants(e.Revoked), f[1:]
	}
	if want := strings.Join(f, " "); got != want {
		s.fatalf("effect: %s, want %s", got, want)
	}
}
