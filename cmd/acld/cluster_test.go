package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
	"github.com/acl-es/acl/replay"
)

// clusterNode is one nats-server of a test cluster, restartable on the same ports and store.
type clusterNode struct {
	name        string
	opts        *server.Options
	srv         *server.Server
	clientPort  int
	clusterPort int
}

func (n *clusterNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort) }

func (n *clusterNode) start(t testing.TB) {
	t.Helper()
	opts := *n.opts
	s, err := server.NewServer(&opts)
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(60 * time.Second) { // JetStream starts first, slowly under load
		t.Fatalf("%s not ready", n.name)
	}
	n.srv = s
}

func (n *clusterNode) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// routePassword authenticates the nodes to each other, as the shipped configurations do: a
// route is trusted with everything (it may carry any account's messages and any header), so a
// server that is not one of the cluster's must not become one.
const routePassword = "route-secret-for-tests"

// startCluster starts three nats-server nodes in process with the accounts acld's layout
// gives (owner: acld's key; the anonymous caller), JetStream on each, routes between them.
func startCluster(t testing.TB, owner *events.Owner) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, 3)
	var routes []string
	for i := range nodes {
		nodes[i] = &clusterNode{name: fmt.Sprintf("n%d", i+1), clientPort: freePort(t), clusterPort: freePort(t)}
		routes = append(routes, fmt.Sprintf("nats-route://route:%s@127.0.0.1:%d", routePassword, nodes[i].clusterPort))
	}
	accounts := events.Layout{Owner: owner.PublicKey()}.Config()
	for _, n := range nodes {
		conf := fmt.Sprintf(`
server_name: %s
listen: "127.0.0.1:%d"
jetstream { store_dir: %q }
cluster { name: "acl", listen: "127.0.0.1:%d", authorization { user: "route", password: %q }, routes: [%s] }
%s`, n.name, n.clientPort, filepath.Join(t.TempDir(), n.name), n.clusterPort, routePassword, `"`+strings.Join(routes, `", "`)+`"`, accounts)
		opts := &server.Options{}
		if err := opts.ProcessConfigString(conf); err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		opts.NoSigs, opts.NoLog = true, true
		n.opts = opts
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.start(t) }()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop()
		}
	})
	return nodes
}

// skipCluster skips a cluster test in -short and under the race detector: three servers and
// acld under it exceed two cores; go test ./... runs it.
func skipCluster(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("a cluster under the race detector exceeds two cores; runs in go test ./...")
	}
	if testing.Short() {
		t.Skip("cluster test")
	}
}

// TestClusterLeaderLoss: three nats-server nodes, the stream at R3, two acld instances; eight
// clients send commands while the stream leader's node is stopped and later restarted. No
// acknowledged command is lost (each is in both read models), every request is answered within
// the 10 s bound (ok or unavailable, never silence), and the two read models end byte for byte
// equal. The clients connect to the nodes that stay up, as a service on a surviving machine
// would.
func TestClusterLeaderLoss(t *testing.T) {
	skipCluster(t)
	seedFile, owner := ownerSeedFile(t)
	nodes := startCluster(t, owner)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	var acld []*Main
	for _, dir := range dirs {
		acld = append(acld, startMain(t, func(c *Config) {
			c.DataDir, c.NATSURL, c.NATSNkey, c.Replicas, c.NATSListen = dir, strings.Join(urls, ","), seedFile, 3, ""
			c.StoreWait = time.Minute
		}))
	}
	info, err := acld[0].store.StreamInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	var leader *clusterNode
	var survivors []string
	for _, n := range nodes {
		if n.name == info.Cluster.Leader {
			leader = n
		} else {
			survivors = append(survivors, n.url())
		}
	}
	if leader == nil {
		t.Fatalf("leader %q is none of the nodes", info.Cluster.Leader)
	}

	nc, err := nats.Connect(strings.Join(survivors, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if a := request(t, nc, "acl.commands.c1.CreateTenant", cmdBody("system", `"preset":"trackops","admin":{"principal":"root","kind":"staff","email":"r@c.test"}`)); a.raw["ok"] != true {
		t.Fatalf("create tenant: %v", a.raw)
	}

	type outcome struct {
		id   string
		seq  uint64
		took time.Duration
		at   time.Time // when the acknowledgement came
	}
	var (
		mu        sync.Mutex
		acked     []outcome
		slowest   time.Duration
		silent    []string // no answer within 11 s, for a request sent after the stop: past the bound
		lost      int      // no answer to a request in flight when the node stopped (retried)
		stopped   time.Time
		down      time.Time // when the stopped node's shutdown returned
		unavail   int
		otherErrs []string
		wg        sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn, err := nats.Connect(strings.Join(survivors, ","))
			if err != nil {
				t.Error(err)
				return
			}
			defer cn.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("p%d-%d", w, i)
				body := fmt.Sprintf(`{"command_id":%q,"actor":"root","principal":%q,"kind":"staff"}`, uuid.NewString(), id)
				for { // retry unavailable with the same command id, as the client does
					start := time.Now()
					m, err := cn.Request("acl.commands.c1.RegisterPrincipal", []byte(body), 11*time.Second)
					took := time.Since(start)
					mu.Lock()
					slowest = max(slowest, took)
					mu.Unlock()
					if errors.Is(err, nats.ErrTimeout) {
						// A request on its way through the stopping node (to an acld connected
						// there) is lost with it: core NATS keeps no copy. Nobody can answer it,
						// so the client retries with the same command id, as commands.Client
						// does. A request sent after the stop must be answered.
						// The node's shutdown takes its time (100-260 ms at load 12-17):
						// in flight means sent before it returned (and 500 ms for routes and
						// acld to see the closed connections).
						mu.Lock()
						if !down.IsZero() && start.After(down.Add(500*time.Millisecond)) {
							silent = append(silent, id)
						} else {
							lost++
						}
						mu.Unlock()
						continue
					}
					if err != nil {
						time.Sleep(50 * time.Millisecond) // no responders while an acld reconnects
						continue
					}
					var a struct {
						OK    bool   `json:"ok"`
						Seq   uint64 `json:"seq"`
						Error struct{ Code, Message string }
					}
					json.Unmarshal(m.Data, &a)
					mu.Lock()
					switch {
					case a.OK:
						acked = append(acked, outcome{id, a.Seq, took, time.Now()})
					case a.Error.Code == "unavailable":
						unavail++
					default:
						otherErrs = append(otherErrs, id+": "+a.Error.Code+" "+a.Error.Message)
					}
					mu.Unlock()
					if a.OK || a.Error.Code != "unavailable" {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	stopped = time.Now()
	mu.Unlock()
	// The leader's node goes away. Its shutdown ends the window of requests lost in flight
	// (down, below): one that hung would widen that window until it excused any silence, so
	// it must return, within a bound for what must come (it took 100-260 ms at load 12-17).
	const shutdownBound = 30 * time.Second
	shut := make(chan struct{})
	go func() {
		leader.stop()
		close(shut)
	}()
	select {
	case <-shut:
	case <-time.After(shutdownBound):
		close(stop)
		wg.Wait()
		t.Fatalf("the stream leader %s's shutdown did not return within %v", leader.name, shutdownBound)
	}
	mu.Lock()
	down = time.Now()
	mu.Unlock()
	t.Logf("stopped the stream leader %s (its shutdown took %v)", leader.name, down.Sub(stopped).Round(time.Millisecond))
	time.Sleep(8 * time.Second)
	leader.start(t)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	if len(silent) > 0 {
		t.Errorf("%d commands had no answer within 11 s (the bound is 10 s): %v", len(silent), silent[:min(5, len(silent))])
	}
	if len(otherErrs) > 0 {
		t.Errorf("%d commands failed otherwise: %v", len(otherErrs), otherErrs[:min(5, len(otherErrs))])
	}
	if len(acked) < 100 {
		t.Fatalf("only %d commands acknowledged", len(acked))
	}
	// The README's "time without acknowledgements after a leader loss": the longest interval
	// between two acknowledgements from the stop on.
	var times []time.Time
	for _, o := range acked {
		if o.at.After(stopped) {
			times = append(times, o.at)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	gap := time.Duration(0)
	prev := stopped
	for _, at := range times {
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	t.Logf("%d acknowledged, %d unavailable answers and %d requests lost in flight (retried), slowest answer %v; longest time without an acknowledgement after the leader stopped: %v",
		len(acked), unavail, lost, slowest, gap.Round(time.Millisecond))

	// Every acknowledged command is in both read models, which end equal.
	last := uint64(0)
	for _, o := range acked {
		last = max(last, o.seq)
	}
	for i, m := range acld {
		// The claim is that nothing acknowledged is missing, not how fast a follower catches up:
		// under .ci/run's parallel packages a read model was once 12,000 messages behind the
		// last acknowledgement, past min_seq's 2 s. A follower that stopped for good still fails
		// here, by the deadline.
		waitStart := time.Now()
		caughtUp(t, m, last)
		t.Logf("acld %d: read model at seq %d %v after the writers stopped waiting", i, last, time.Since(waitStart).Round(time.Millisecond))
		base := "http://" + m.HTTPAddr()
		found := map[string]bool{}
		cursor := ""
		for {
			status, a := postJSON(t, base+"/v1/tenants/c1/visible",
				fmt.Sprintf(`{"principal":"root","type":"user","limit":1000,"cursor":%q,"min_seq":%d}`, cursor, last))
			if status != 200 {
				t.Fatalf("acld %d visible: %d %v", i, status, a)
			}
			for _, id := range a["ids"].([]any) {
				found[id.(string)] = true
			}
			if cursor = a["next_cursor"].(string); cursor == "" {
				break
			}
		}
		for _, o := range acked {
			if !found[o.id] {
				t.Fatalf("acld %d: acknowledged %s (seq %d) is not in its read model", i, o.id, o.seq)
			}
		}
	}
	// as_of a future time answers as now, on a replicated stream too.
	for i, m := range acld {
		base := "http://" + m.HTTPAddr()
		for _, q := range []struct{ query, body string }{
			{"permissions", `{"principal":"root","as_of":"2099-01-01T00:00:00Z"}`},
			{"check", `{"principal":"root","permission":"user.view","as_of":"2099-01-01T00:00:00Z"}`},
			{"visible", `{"principal":"root","type":"user","limit":1,"as_of":"2099-01-01T00:00:00Z"}`},
		} {
			if status, a := postJSON(t, base+"/v1/tenants/c1/"+q.query, q.body); status != 200 {
				t.Errorf("acld %d %s as_of the future: %d %v", i, q.query, status, a)
			}
		}
	}
	end, err := acld[0].store.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range acld {
		if err := m.proj.WaitFor(context.Background(), end); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := replay.Verify(filepath.Join(dirs[0], "readmodel"), filepath.Join(dirs[1], "readmodel"))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("the two read models differ in %d of %d keys: %+v", rep.Differences, rep.Keys, rep.Listed[:min(3, len(rep.Listed))])
	}
}

// TestClusterRefusesRogueRoute: a server that routes to the cluster without its route
// credentials is not let in (it could otherwise carry messages into acld's account with any
// Nats-Request-Info it likes).
func TestClusterRefusesRogueRoute(t *testing.T) {
	_, owner := ownerSeedFile(t)
	nodes := startCluster(t, owner)
	rogue := &server.Options{ServerName: "rogue", Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: "acl", Host: "127.0.0.1", Port: -1}}
	rogue.Routes = server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", nodes[0].clusterPort))
	rs, err := server.NewServer(rogue)
	if err != nil {
		t.Fatal(err)
	}
	go rs.Start()
	defer func() { rs.Shutdown(); rs.WaitForShutdown() }()
	if !rs.ReadyForConnections(60 * time.Second) {
		t.Fatal("rogue not ready")
	}
	// The rogue counts a route from the node's INFO, which the node sends before it reads the
	// rogue's CONNECT and refuses it, and it tries again every second: sampled once, it can hold
	// one of these for a moment (seen under load). The nodes never register it (they would on
	// the rogue's INFO, after its CONNECT), and a route let in stays: watch the nodes for 1.5 s
	// (a route connects within milliseconds when let in), then the rogue must be seen without.
	nodeRoutes := func() {
		t.Helper()
		for _, n := range nodes {
			rz, err := n.srv.Routez(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rz.Routes {
				if r.RemoteName == "rogue" {
					t.Fatalf("cluster node %s has a route to the rogue: %+v", n.name, r)
				}
			}
		}
	}
	moments, held := 0, 0
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		nodeRoutes()
		if moments++; rs.NumRoutes() != 0 {
			held++
		}
	}
	eventstest.WaitFor(t, 30*time.Second, func() error {
		nodeRoutes()
		if n := rs.NumRoutes(); n != 0 {
			return fmt.Errorf("a route without credentials joined: the rogue has %d routes", n)
		}
		return nil
	})
	t.Logf("the rogue held a refused route in %d of %d moments", held, moments)
}

// TestClusterChangesListeners: in a cluster, a caller's subscription to the change feed on one
// node is seen by the others (routes bring the shadow subscription of its import to them), and
// its unsubscription too. acld on an external server or cluster cannot ask it: its feed derives
// every change, with nobody subscribed.
func TestClusterChangesListeners(t *testing.T) {
	skipCluster(t)
	seedFile, owner := ownerSeedFile(t)
	nodes := startCluster(t, owner)
	sub, err := nats.Connect(nodes[1].url())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	s, err := sub.SubscribeSync(events.ChangesSubject("c1", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	seen := func(want bool) {
		t.Helper()
		for _, n := range nodes {
			l, err := events.NewChangesListeners(n.srv)
			if err != nil {
				t.Fatal(err)
			}
			eventstest.WaitFor(t, 30*time.Second, func() error {
				if got := l.Principal("c1", "bob"); got != want {
					return fmt.Errorf("%s: bob listened to: %v, want %v", n.name, got, want)
				}
				if l.Principal("c1", "ann") || l.Everyone("c1") {
					return fmt.Errorf("%s: ann or everyone listened to", n.name)
				}
				return nil
			})
		}
	}
	seen(true)
	s.Unsubscribe()
	sub.Flush()
	seen(false)

	m := startMain(t, func(c *Config) {
		c.NATSURL, c.NATSNkey, c.Replicas, c.NATSListen, c.Demo = nodes[0].url(), seedFile, 3, "", true
		c.StoreWait = time.Minute
	})
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if !m.proj.Ready() {
			return errors.New("projector not started")
		}
		return nil
	})
	nc, err := nats.Connect(nodes[2].url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	feedPublished(t, m, request(t, nc, "acl.commands.demo.AssignRecord", cmdBody("ann", `"type":"case","id":"case-2","principal":"bob"`)))
	if n := m.feed.Changes(); n == 0 {
		t.Fatal("acld on an external cluster derived no change: it cannot tell that nobody listens")
	}
}
