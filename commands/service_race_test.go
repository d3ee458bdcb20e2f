package commands

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestSeatRace is TO-7 under a race: 50 clients, served by three instances, each move another
// principal to level full while 5 full seats are free (limit 6, the administrator holds one).
// Exactly 5 succeed, the other 45 answer seat_limit_reached, and the tenant counts 6.
func TestSeatRace(t *testing.T) {
	e := startEnv(t, 3)
	e.reconpro()
	e.must(aggregates.SystemActor, &aggregates.SetSubscription{Features: &[]string{}, Seats: map[string]int{aggregates.LevelFull: 6}})
	// reconpro() gave full seats to admin, ta, bob and carl: free those of ta, bob and carl.
	for _, p := range []string{"ta", "bob", "carl"} {
		e.must("admin", &aggregates.SetAccessLevel{Principal: p, Level: aggregates.LevelLimited})
	}
	const n = 50
	for i := range n {
		e.person(fmt.Sprintf("p%02d", i), aggregates.KindStaff, "", aggregates.LevelDisabled, nil)
	}
	codes := make([]aggregates.Code, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewClient(e.Connect(t))
			<-start
			_, err := c.SetAccessLevel(e.ctx, "acme", "admin", fmt.Sprintf("p%02d", i), aggregates.LevelFull)
			codes[i] = aggregates.Code("ok")
			if err != nil {
				codes[i] = aggregates.ErrorCode(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	count := map[aggregates.Code]int{}
	for _, c := range codes {
		count[c]++
	}
	if count["ok"] != 5 || count[aggregates.CodeSeatLimitReached] != n-5 {
		t.Fatalf("answers %v, want 5 ok and %d seat_limit_reached", count, n-5)
	}
	tenant := e.state(events.TenantRef("acme")).(*aggregates.Tenant)
	if used := tenant.SeatsUsed(aggregates.LevelFull); used != 6 {
		t.Fatalf("the tenant counts %d full seats, want 6", used)
	}
	full := 0
	for i := range n {
		if e.state(events.PrincipalRef(fmt.Sprintf("p%02d", i))).(*aggregates.Principal).Level == aggregates.LevelFull {
			full++
		}
	}
	if full != 5 {
		t.Fatalf("%d principals are at full, want 5", full)
	}
}

// TestExclusiveRace is RP-10 under a race: many clients give carl either the exclusive
// team_work_manager or one of several other roles at once. Exactly one kind wins: carl ends
// with team_work_manager alone, or with other roles only, and every loser answers
// exclusive_role.
func TestExclusiveRace(t *testing.T) {
	e := startEnv(t, 3)
	e.reconpro()
	others := []string{"accountant", "work_manager", "work_manager_read_only"}
	type try struct {
		role string
		code aggregates.Code
	}
	var tries []*try
	for i := range 24 {
		r := "team_work_manager"
		if i%2 == 1 {
			r = others[i/2%len(others)]
		}
		tries = append(tries, &try{role: r})
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, tr := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewClient(e.Connect(t))
			<-start
			_, err := c.AssignRole(e.ctx, "acme", "admin", "carl", tr.role)
			if err != nil {
				tr.code = aggregates.ErrorCode(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	carl := e.state(events.PrincipalRef("carl")).(*aggregates.Principal)
	exclusiveWon := slices.Contains(carl.Roles, "team_work_manager")
	if exclusiveWon && len(carl.Roles) != 1 {
		t.Fatalf("carl holds %v: the exclusive role with others", carl.Roles)
	}
	for _, tr := range tries {
		loser := (tr.role == "team_work_manager") != exclusiveWon
		if want := map[bool]aggregates.Code{true: aggregates.CodeExclusiveRole, false: ""}[loser]; tr.code != want {
			t.Fatalf("assigning %s answered %q, want %q (carl holds %v)", tr.role, tr.code, want, carl.Roles)
		}
	}
}
