package main

import (
	"context"
	"fmt"

	"github.com/acl-es/acl/commands"
)

// runCommands measures the steady-state command mix (Tenant.Op) through the real command path,
// once per client count of --clients: each client is a goroutine with its own NATS connection
// and commands.Client, sending its next command when the previous one is answered.
func runCommands(ctx context.Context, b *bench) ([]Result, error) {
	var out []Result
	for _, n := range b.opt.clients {
		clients := make([]*commands.Client, n)
		for k := range clients {
			nc, err := b.st.connect()
			if err != nil {
				return out, err
			}
			clients[k] = commands.NewClient(nc)
		}
		run := fmt.Sprintf("%s-c%d", b.opt.run, n)
		tenants := b.ds.Tenants
		fn := func(ctx context.Context, w int, i int64) error {
			t := tenants[i%int64(len(tenants))]
			cmd := t.Op(run, int(i))
			_, err := clients[w].Do(ctx, t.ID, cmd)
			return err
		}
		o := drive(ctx, driveSpec{workers: n, duration: b.opt.duration, warmup: b.opt.warmup}, fn)
		r := resultOf("commands", fmt.Sprintf("clients=%d", n), "commands/s", o, b.scaleOf())
		r.Notes = append(r.Notes, "mix: 45% AssignRecord, 15% UpdateRecord, 25% RegisterRecord, 10% GrantPermission, 5% JoinUnit")
		out = append(out, r)
	}
	return out, nil
}
