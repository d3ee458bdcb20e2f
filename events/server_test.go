package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/events"
)

func TestParseSync(t *testing.T) {
	tests := []struct {
		in       string
		interval time.Duration
		always   bool
		bad      bool
	}{
		{"", 100 * time.Millisecond, false, false},
		{"always", 0, true, false},
		{"ALWAYS", 0, true, false},
		{"10ms", 10 * time.Millisecond, false, false},
		{"2m", 2 * time.Minute, false, false},
		{"0s", 0, false, true},
		{"-1s", 0, false, true},
		{"sometimes", 0, false, true},
		{"100", 0, false, true},
	}
	for _, tc := range tests {
		interval, always, err := events.ParseSync(tc.in)
		if tc.bad != errors.Is(err, events.ErrConfig) || interval != tc.interval || always != tc.always {
			t.Errorf("ParseSync(%q) = %v, %v, %v; want %v, %v, bad %v", tc.in, interval, always, err, tc.interval, tc.always, tc.bad)
		}
	}
}

func TestStartServerConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  events.ServerConfig
	}{
		{"no directory", events.ServerConfig{}},
		{"bad sync", events.ServerConfig{Dir: "x", Sync: "often"}},
		{"listen without port", events.ServerConfig{Dir: "x", Listen: "localhost"}},
		{"listen bad port", events.ServerConfig{Dir: "x", Listen: "localhost:http"}},
		{"listen port out of range", events.ServerConfig{Dir: "x", Listen: "localhost:70000"}},
	}
	for _, tc := range tests {
		if s, err := events.StartServer(tc.cfg); !errors.Is(err, events.ErrConfig) {
			if s != nil {
				s.Shutdown()
			}
			t.Errorf("%s: StartServer = %v; want ErrConfig", tc.name, err)
		}
	}
}

// TestStartServerListen: with Listen, the owner connects over TCP (port -1: a free port) and
// opens the store; a client without credentials connects too, as the anonymous caller.
func TestStartServerListen(t *testing.T) {
	owner, err := events.NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.StartServer(events.ServerConfig{Dir: t.TempDir(), Listen: "127.0.0.1:-1", Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if s.Addr() == nil {
		t.Fatal("no listener")
	}
	anon, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect %s without credentials: %v", s.ClientURL(), err)
	}
	anon.Close()
	nc, err := nats.Connect(s.ClientURL(), owner.Option())
	if err != nil {
		t.Fatalf("connect %s: %v", s.ClientURL(), err)
	}
	defer nc.Close()
	st, err := events.OpenStore(ctxT(t), nc, events.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, st, 3)
	if n := lastSeq(t, st); n != 3 {
		t.Fatalf("last seq %d; want 3", n)
	}
}

// TestStartServerInProcessOnly: without Listen there is no socket at all.
func TestStartServerInProcessOnly(t *testing.T) {
	s, err := events.StartServer(events.ServerConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if s.Addr() != nil {
		t.Fatalf("listening on %v", s.Addr())
	}
	nc, err := events.ConnectInProcess(s)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}
