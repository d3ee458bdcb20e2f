package commands_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// A service assigns a record, then checks with the command's Result as min_seq, walks a
// listing, and asks over HTTP as of a time (README, "Calling it from a service").
func ExampleClient_Check() {
	ctx := context.Background()
	opt, err := nats.NkeyOptionFromSeed("billing.seed")
	if err != nil {
		return
	}
	c, err := commands.Dial("nats://acl.internal:4222", opt)
	if err != nil {
		return
	}
	defer c.Conn().Close()
	res, err := c.AssignRecord(ctx, "acme", "billing-bot", "invoice", "inv-7", "bob", "salesperson")
	var e *aggregates.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code) // forbidden, not_found, ...
		return
	}
	ans, err := c.Check(ctx, "acme", aggregates.CheckQuery{Principal: "bob", Permission: "invoice.view",
		Record: &events.RecordRef{Type: "invoice", ID: "inv-7"}}, commands.After(res))
	if err == nil && ans.Allowed {
		fmt.Println(ans.Grants)
	}
	for id, err := range c.Visible(ctx, "acme", aggregates.VisibleQuery{Principal: "bob", Type: "invoice"}) {
		if err != nil {
			return
		}
		fmt.Println(id)
	}
	hc := c.UseHTTP("https://acl.internal:8080", os.Getenv("ACL_TOKEN"), nil)
	perms, err := hc.Permissions(ctx, "acme", aggregates.PermissionsQuery{Principal: "bob"},
		commands.AsOfTime(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
	fmt.Println(perms.Level, err)
}
