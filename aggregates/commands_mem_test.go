package aggregates

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/acl-es/acl/events"
)

// oracleRemember is what an aggregate remembered of its commands before Commands: a map of
// strings, each event joining its command's result.
func oracleRemember(cmds map[string]CommandResult, e events.Envelope) {
	if e.CommandID == "" {
		return
	}
	r := cmds[e.CommandID]
	r.Seq = e.Seq
	r.Events = append(slices.Clip(r.Events), e.ID)
	r.Hash = e.CommandHash
	cmds[e.CommandID] = r
}

func testUUID(rng *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff,
		rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
}

// TestCommandsAsMap: whatever the ids look like (UUIDs, other strings, upper case), however the
// events of one command are spread, Commands answers what the map of strings answered, also
// after a Clone and through All and Visit, and a clone's changes never show in its original.
func TestCommandsAsMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		var c Commands
		oracle := map[string]CommandResult{}
		ids := []string{}
		n := 1 + rng.IntN(40)
		if round%4 == 0 {
			n = indexFrom + rng.IntN(4*indexFrom) // past the index of ids
		}
		for k := range n {
			var id string
			switch {
			case len(ids) > 0 && rng.IntN(3) == 0: // a command seen before (a second event)
				id = ids[rng.IntN(len(ids))]
			case rng.IntN(10) == 0:
				id = fmt.Sprintf("cmd-%d", k) // not a UUID
			case rng.IntN(20) == 0:
				id = "ABCDEF01-" + testUUID(rng)[9:] // a UUID not in canonical form
			default:
				id = testUUID(rng)
			}
			ids = append(ids, id)
			ev := testUUID(rng)
			if rng.IntN(15) == 0 {
				ev = fmt.Sprintf("ev-%d", k)
			}
			hash := fmt.Sprintf("%064x", rng.Uint64())
			switch rng.IntN(12) {
			case 0:
				hash = ""
			case 1:
				hash = "h-" + hash[:10]
			}
			e := events.Envelope{ID: ev, CommandID: id, CommandHash: hash, Seq: uint64(k + 1)}
			if rng.IntN(25) == 0 {
				e.CommandID = "" // an event of no command
			}
			c.add(e)
			oracleRemember(oracle, e)
			if rng.IntN(10) == 0 { // a writer clones a shared state before applying to it
				shared, before := c, maps.Collect(c.All())
				c = shared.Clone()
				c.add(events.Envelope{ID: testUUID(rng), CommandID: id, CommandHash: hash, Seq: uint64(k + 1)})
				if after := maps.Collect(shared.All()); !reflect.DeepEqual(after, before) {
					t.Fatalf("round %d: applying to a clone changed its original", round)
				}
				c = shared
			}
		}
		if c.Len() != len(oracle) {
			t.Fatalf("round %d: %d commands, want %d", round, c.Len(), len(oracle))
		}
		for id, want := range oracle {
			if got, ok := c.Get(id); !ok || !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: %s: %+v %v, want %+v", round, id, got, ok, want)
			}
		}
		if _, ok := c.Get(testUUID(rng)); ok {
			t.Fatalf("round %d: remembers a command never applied", round)
		}
		if got := maps.Collect(c.All()); !reflect.DeepEqual(got, oracle) {
			t.Fatalf("round %d: All gives %v, want %v", round, got, oracle)
		}
		visited := map[string]CommandResult{}
		c.Visit(func(id string, r CommandResult) {
			r.Events = append([]string(nil), r.Events...)
			visited[id] = r
		})
		if !reflect.DeepEqual(visited, oracle) {
			t.Fatalf("round %d: Visit gives %v, want %v", round, visited, oracle)
		}
		var loaded Commands
		for id, r := range oracle {
			loaded.Append(id, r)
		}
		if got := maps.Collect(loaded.All()); !reflect.DeepEqual(got, oracle) {
			t.Fatalf("round %d: appended %v, want %v", round, got, oracle)
		}
		cl := c.Clone()
		if got := maps.Collect(cl.All()); !reflect.DeepEqual(got, oracle) {
			t.Fatalf("round %d: a clone gives %v, want %v", round, got, oracle)
		}
	}
}

// TestCommandsCompact: commands with UUIDs and hex hashes are kept in memory the collector does
// not scan: a state remembering 100 of them holds three objects for them, none of pointers.
func TestCommandsCompact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var es []events.Envelope
	for k := range 100 {
		es = append(es, events.Envelope{ID: testUUID(rng), CommandID: testUUID(rng),
			CommandHash: fmt.Sprintf("%064x", rng.Uint64()), Seq: uint64(k + 1)})
	}
	var c Commands
	for _, e := range es {
		c.add(e)
	}
	if c.more != nil || len(c.recs) != 100 || len(c.evs) != 100 {
		t.Fatalf("not compact: %d in the map, %d compact, %d events", len(c.more), len(c.recs), len(c.evs))
	}
	if n := testing.AllocsPerRun(10, func() { _ = c.Clone() }); n > 2 {
		t.Fatalf("a clone makes %.0f objects, want 2", n)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = c.Get(es[0].CommandID) }); n > 2 {
		t.Fatalf("a look-up makes %.0f objects, want at most 2", n)
	}
	unknown := testUUID(rng)
	if n := testing.AllocsPerRun(10, func() { _, _ = c.Get(unknown) }); n > 0 {
		t.Fatalf("a look-up of an unknown command makes %.0f objects", n)
	}
}

// BenchmarkCommandsLoad: a state loaded from the stream remembers each event's command, one add
// an event. Without the index of ids (indexFrom) each add scanned every command remembered: at
// 10^5 commands 7.5 s against 0.11 s for a map (round 16's review).
func BenchmarkCommandsLoad(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	es := make([]events.Envelope, 100_000)
	for k := range es {
		es[k] = events.Envelope{ID: testUUID(rng), CommandID: testUUID(rng), CommandHash: fmt.Sprintf("%064x", rng.Uint64()), Seq: uint64(k + 1)}
	}
	b.ReportAllocs()
	for b.Loop() {
		var c Commands
		for _, e := range es {
			c.add(e)
		}
		if c.Len() != len(es) {
			b.Fatalf("%d commands", c.Len())
		}
	}
}

// TestCommandsForget: Forget moves out the oldest commands (by sequence, whatever the form of
// their ids) beyond the newest keep and returns them with their results; what stays answers
// as before, Moved counts what left, a clone keeps the count, and more commands apply to what
// stays as to a full memory.
func TestCommandsForget(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		var c Commands
		oracle := map[string]CommandResult{}
		var last string
		seq := uint64(0)
		add := func() {
			id := testUUID(rng)
			switch {
			case last != "" && rng.IntN(4) == 0:
				id = last // a second event of the last command
			case rng.IntN(12) == 0:
				id = fmt.Sprintf("cmd-%d-%d", round, seq) // not compact
			}
			last = id
			seq++
			e := events.Envelope{ID: testUUID(rng), Seq: seq, CommandID: id, CommandHash: fmt.Sprintf("%064x", seq)}
			c.add(e)
			oracleRemember(oracle, e)
		}
		for range 1 + rng.IntN(200) {
			add()
		}
		if round%2 == 0 { // a clone, as the command service trims a writer's copy
			c = c.Clone()
		}
		ids := slices.Collect(maps.Keys(oracle))
		slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(oracle[a].Seq, oracle[b].Seq) })
		keep := rng.IntN(70)
		moved := c.Forget(keep)
		wantMoved := max(len(ids)-keep, 0)
		if moved.Len() != wantMoved || c.Moved() != uint64(wantMoved) || c.Len() != len(ids)-wantMoved {
			t.Fatalf("round %d: moved %d, Moved %d, kept %d; want %d of %d moved", round, moved.Len(), c.Moved(), c.Len(), wantMoved, len(ids))
		}
		for i, id := range ids {
			r, inC := c.Get(id)
			m, inMoved := moved.Get(id)
			if old := i < wantMoved; inC == old || inMoved != old {
				t.Fatalf("round %d: command %d of %d (keep %d): kept %v, moved %v", round, i, len(ids), keep, inC, inMoved)
			}
			if !inC {
				r = m
			}
			if !reflect.DeepEqual(r, oracle[id]) {
				t.Fatalf("round %d: %s: %+v, want %+v", round, id, r, oracle[id])
			}
		}
		if cl := c.Clone(); cl.Moved() != c.Moved() {
			t.Fatalf("round %d: a clone's Moved %d, want %d", round, cl.Moved(), c.Moved())
		}
		last = ""
		for range 5 {
			add()
		}
		for id, want := range oracle {
			if _, wasMoved := moved.Get(id); wasMoved {
				continue
			}
			if r, ok := c.Get(id); !ok || !reflect.DeepEqual(r, want) {
				t.Fatalf("round %d: after more commands, %s: %+v, want %+v", round, id, r, want)
			}
		}
	}
}
