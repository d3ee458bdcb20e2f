package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// identities is a test's --auth file and the secrets its services hold.
type identities struct {
	path         string
	billingSeed  []byte // billing's NATS nkey seed
	billingToken string // billing's HTTP token
	opsPassword  string
	auditorToken string
}

// writeIdentities writes an identity file with three services:
//   - billing: tenant demo, RegisterRecord and AssignRecord as ann, check and visible; NATS by
//     nkey, HTTP by token;
//   - ops: everything, system included, and the log; NATS by user and bcrypt password;
//   - auditor: HTTP only, every query of every tenant, no command.
func writeIdentities(t testing.TB) identities {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	billingToken, billingHash := NewToken()
	auditorToken, auditorHash := NewToken()
	pw := "ops-password-for-tests"
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := map[string]any{"identities": []any{
		map[string]any{"name": "billing", "nats": map[string]any{"nkey": pub}, "http": map[string]any{"token_sha256": billingHash},
			"tenants": []string{"demo"}, "commands": []string{"RegisterRecord", "AssignRecord"}, "queries": []string{"check", "visible", "history"},
			"actors": []string{"ann"}},
		map[string]any{"name": "ops", "nats": map[string]any{"user": "ops", "password": string(hash)},
			"tenants": []string{"*"}, "commands": []string{"*"}, "queries": []string{"*"}, "actors": []string{"*"}, "system": true, "read_log": true},
		map[string]any{"name": "auditor", "http": map[string]any{"token_sha256": auditorHash},
			"tenants": []string{"*"}, "queries": []string{"*"}},
	}}
	b, _ := json.Marshal(file)
	path := filepath.Join(t.TempDir(), "identities.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return identities{path: path, billingSeed: seed, billingToken: billingToken, opsPassword: pw, auditorToken: auditorToken}
}

// startSecured starts acld with the identity file, the demo tenant and a NATS listener.
func startSecured(t *testing.T, ids identities, mutate ...func(*Config)) *Main {
	t.Helper()
	return startMain(t, append([]func(*Config){func(c *Config) {
		c.Auth, c.Demo, c.NATSListen = ids.path, true, "127.0.0.1:-1"
	}}, mutate...)...)
}

func nkeyOption(t *testing.T, seed []byte) nats.Option {
	t.Helper()
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	return nats.Nkey(pub, kp.Sign)
}

// answer is a command's or query's answer over NATS, with how long it took.
type answer struct {
	raw  map[string]any
	took time.Duration
}

func (a answer) code() string {
	e, _ := a.raw["error"].(map[string]any)
	if e == nil {
		return ""
	}
	return e["code"].(string)
}

func (a answer) message() string {
	e, _ := a.raw["error"].(map[string]any)
	if e == nil {
		return ""
	}
	return e["message"].(string)
}

func request(t *testing.T, nc *nats.Conn, subject, body string) answer {
	t.Helper()
	start := time.Now()
	m, err := nc.Request(subject, []byte(body), 5*time.Second)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v after %v", subject, err, took)
	}
	var raw map[string]any
	if err := json.Unmarshal(m.Data, &raw); err != nil {
		t.Fatalf("%s: %q: %v", subject, m.Data, err)
	}
	return answer{raw, took}
}

func cmdBody(actor string, fields string) string {
	return fmt.Sprintf(`{"command_id":%q,"actor":%q,%s}`, uuid.NewString(), actor, fields)
}

// TestIdentityRestrictionsOverNATS: each restriction of an identity, beside a control that
// succeeds; every refusal comes at once (well under a second) as forbidden naming the identity
// and what it lacks, and writes nothing.
func TestIdentityRestrictionsOverNATS(t *testing.T) {
	ids := writeIdentities(t)
	m := startSecured(t, ids)
	url := m.nats.ClientURL()
	billing, err := nats.Connect(url, nkeyOption(t, ids.billingSeed))
	if err != nil {
		t.Fatal(err)
	}
	defer billing.Close()
	seq := itoa(lastSeq(t, m))

	rec := `"type":"invoice","id":"inv-9","client":"acme"`
	control := request(t, billing, "acl.commands.demo.RegisterRecord", cmdBody("ann", rec))
	if control.raw["ok"] != true {
		t.Fatalf("control command: %v", control.raw)
	}
	if a := request(t, billing, "acl.queries.demo.check", `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"},"min_seq":`+seq+`}`); a.code() != "" {
		t.Fatalf("control query: %v", a.raw)
	}
	before := lastSeq(t, m)
	refusals := []struct {
		name, subject, body, says string
	}{
		{"another tenant", "acl.commands.other.RegisterRecord", cmdBody("ann", rec), `may not address tenant "other"`},
		{"a command not granted", "acl.commands.demo.AssignRole", cmdBody("ann", `"principal":"bob","role":"administrator"`), "may not send AssignRole"},
		{"an actor not granted", "acl.commands.demo.RegisterRecord", cmdBody("bob", `"type":"invoice","id":"inv-10"`), `may not act as "bob"`},
		{"system without the right", "acl.commands.demo.RegisterRecord", cmdBody("system", `"type":"invoice","id":"inv-11"`), "may not act as system"},
		{"a query not granted", "acl.queries.demo.permissions", `{"principal":"bob"}`, "may not ask permissions"},
		{"a query on another tenant", "acl.queries.other.check", `{"principal":"bob","permission":"invoice.view"}`, `may not address tenant "other"`},
	}
	for _, r := range refusals {
		a := request(t, billing, r.subject, r.body)
		if a.code() != "forbidden" || !strings.Contains(a.message(), `identity "billing"`) || !strings.Contains(a.message(), r.says) {
			t.Errorf("%s: %v, want forbidden naming billing and saying %q", r.name, a.raw, r.says)
		}
		if a.took > time.Second {
			t.Errorf("%s: refused after %v", r.name, a.took)
		}
	}
	if after := lastSeq(t, m); after != before {
		t.Fatalf("refused commands moved the stream from %d to %d", before, after)
	}

	// A request that crossed no caller account (here from the store account itself, as from a
	// server not laid out by acld nats-config) names nobody: refused, not let through.
	if a := request(t, m.nc, "acl.commands.demo.RegisterRecord", cmdBody("ann", `"type":"invoice","id":"inv-12"`)); a.code() != "unauthenticated" {
		t.Errorf("a request without a caller account: %v, want unauthenticated", a.raw)
	}

	// ops may act as system: the control for the system refusal.
	ops, err := nats.Connect(url, nats.UserInfo("ops", ids.opsPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	if a := request(t, ops, "acl.commands.other.CreateTenant", cmdBody("system", `"preset":"empty","admin":{"principal":"root","kind":"staff","email":"r@o.test"}`)); a.raw["ok"] != true {
		t.Fatalf("ops creates a tenant as system: %v", a.raw)
	}

	// Missing or wrong credentials: the server refuses the connection at once.
	for name, opts := range map[string][]nats.Option{
		"no credentials": nil,
		"wrong password": {nats.UserInfo("ops", "not-the-password")},
		"unknown nkey":   {nkeyOption(t, mustSeed(t))},
	} {
		start := time.Now()
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		}
		if !errors.Is(err, nats.ErrAuthorization) || time.Since(start) > time.Second {
			t.Fatalf("%s: %v after %v, want an authorization violation at once", name, err, time.Since(start))
		}
	}

	// Attribution: the record billing registered says via billing, the demo's events via acld.
	a := request(t, ops, "acl.queries.demo.history", `{"record":{"type":"invoice","id":"inv-9"},"min_seq":`+itoa(before)+`}`)
	evs, _ := a.raw["events"].([]any)
	if len(evs) != 1 || evs[0].(map[string]any)["via"] != "billing" || evs[0].(map[string]any)["actor"] != "ann" {
		t.Fatalf("history of inv-9: %v, want one event by ann via billing", a.raw)
	}
	a = request(t, ops, "acl.queries.demo.history", `{"record":{"type":"invoice","id":"inv-1"}}`)
	evs, _ = a.raw["events"].([]any)
	if len(evs) == 0 || evs[0].(map[string]any)["via"] != "acld" {
		t.Fatalf("history of inv-1 (the demo's): %v, want via acld", a.raw)
	}
}

func mustSeed(t testing.TB) []byte {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	return seed
}

// TestIdentityRestrictionsOverHTTP: the same over HTTP with bearer tokens: 401 without or with
// a wrong token, 403 outside the identity, each beside a control that succeeds.
func TestIdentityRestrictionsOverHTTP(t *testing.T) {
	ids := writeIdentities(t)
	m := startSecured(t, ids)
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	seq := itoa(lastSeq(t, m))
	check := `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"},"min_seq":` + seq + `}`
	cases := []struct {
		name, token, path, body string
		status                  int
		code, says              string
	}{
		{"control", ids.billingToken, "/v1/tenants/demo/check", check, 200, "", ""},
		{"auditor's control", ids.auditorToken, "/v1/tenants/demo/permissions", `{"principal":"bob"}`, 200, "", ""},
		{"no token", "", "/v1/tenants/demo/check", check, 401, "unauthenticated", "Authorization: Bearer"},
		{"wrong token", "acl_not-a-token", "/v1/tenants/demo/check", check, 401, "unauthenticated", "no identity's"},
		{"a query not granted", ids.billingToken, "/v1/tenants/demo/permissions", `{"principal":"bob"}`, 403, "forbidden", `identity "billing" may not ask permissions`},
		{"another tenant", ids.billingToken, "/v1/tenants/other/check", check, 403, "forbidden", `identity "billing" may not address tenant "other"`},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, base+c.path, strings.NewReader(c.body))
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var a map[string]any
		json.Unmarshal(raw, &a)
		if resp.StatusCode != c.status || (answer{raw: a}).code() != c.code || !strings.Contains((answer{raw: a}).message(), c.says) {
			t.Errorf("%s: %d %s, want %d %s saying %q", c.name, resp.StatusCode, raw, c.status, c.code, c.says)
		}
		if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
		if took > time.Second {
			t.Errorf("%s: answered after %v", c.name, took)
		}
	}
	// Health and readiness stay open to load balancers.
	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz without a token: %v %v", resp, err)
	}
	resp.Body.Close()
}

// forgeRoleAssigned is a copy of bob's last event turned into role administrator, as a forger
// with read access to the log would write it.
func forgeRoleAssigned(t *testing.T, m *Main) []byte {
	t.Helper()
	js, _ := jetstream.New(m.nc)
	stream, err := js.Stream(context.Background(), "ACL_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), "acl.events.demo.principal.bob")
	if err != nil {
		t.Fatal(err)
	}
	var envs []map[string]any
	if err := json.Unmarshal(msg.Data, &envs); err != nil {
		t.Fatal(err)
	}
	e := envs[len(envs)-1]
	e["id"], e["type"], e["data"], e["command_id"] = uuid.NewString(), "role_assigned", map[string]any{"role": "administrator"}, uuid.NewString()
	b, _ := json.Marshal([]any{e})
	return b
}

// TestForgedEventsAreRefused: a connection that is not acld's publishes a forged event on an
// event subject, by core NATS and by a JetStream publish, without --auth (the anonymous caller)
// and with it (an identity allowed everything, the log included): refused, the stream's last
// sequence unchanged, and bob's permissions and checks unchanged.
func TestForgedEventsAreRefused(t *testing.T) {
	for _, secured := range []bool{false, true} {
		t.Run(map[bool]string{false: "without --auth", true: "with --auth"}[secured], func(t *testing.T) {
			var m *Main
			opts := []nats.Option{}
			if secured {
				ids := writeIdentities(t)
				m = startSecured(t, ids)
				opts = append(opts, nats.UserInfo("ops", ids.opsPassword))
			} else {
				m = startMain(t, func(c *Config) { c.Demo = true; c.NATSListen = "127.0.0.1:-1" })
			}
			violations := make(chan error, 8)
			opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
			nc, err := nats.Connect(m.nats.ClientURL(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			seq := lastSeq(t, m)
			perms := request(t, nc, "acl.queries.demo.permissions", `{"principal":"bob","min_seq":`+itoa(seq)+`}`)
			checkBody := `{"principal":"bob","permission":"user.manage_access","record":{"type":"user","id":"ann"}}`
			check := request(t, nc, "acl.queries.demo.check", checkBody)
			if check.raw["allowed"] != false {
				t.Fatalf("bob may manage ann before the forgery: %v", check.raw)
			}
			forged := forgeRoleAssigned(t, m)
			subject := "acl.events.demo.principal.bob"
			if err := nc.Publish(subject, forged); err != nil {
				t.Fatal(err)
			}
			nc.Flush()
			select {
			case err := <-violations:
				if !errors.Is(err, nats.ErrPermissionViolation) {
					t.Fatalf("core publish: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("core publish of a forged event: no permissions violation")
			}
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if ack, err := js.Publish(ctx, subject, forged); err == nil {
				t.Fatalf("JetStream acknowledged a forged event: %+v", ack)
			}
			// Reading the log stays open to those allowed: the forger can see it, not write it.
			if _, err := js.Stream(context.Background(), "ACL_EVENTS"); err != nil {
				t.Fatalf("stream info: %v", err)
			}
			if got := lastSeq(t, m); got != seq {
				t.Fatalf("the stream moved from %d to %d", seq, got)
			}
			// A command after the forgeries: once the read model has applied it, it has
			// applied everything the stream held before it, and nothing forged is among it.
			a := request(t, nc, "acl.commands.demo.RegisterRecord", cmdBody("ann", `"type":"case","id":"case-after-forgery"`))
			if a.raw["ok"] != true {
				t.Fatalf("a command after the forgeries: %v", a.raw)
			}
			seq = uint64(a.raw["seq"].(float64))
			after := request(t, nc, "acl.queries.demo.permissions", `{"principal":"bob","min_seq":`+itoa(seq)+`}`)
			delete(perms.raw, "seq")
			delete(after.raw, "seq")
			if fmt.Sprint(perms.raw) != fmt.Sprint(after.raw) {
				t.Fatalf("bob's permissions changed:\nbefore %v\nafter  %v", perms.raw, after.raw)
			}
			if c := request(t, nc, "acl.queries.demo.check", checkBody); c.raw["allowed"] != false {
				t.Fatalf("bob may manage ann after the forgery: %v", c.raw)
			}
		})
	}
}

// TestListenersNeedAuth: without --auth a non-loopback listener is refused at start, unless
// --insecure; with --auth it is allowed.
func TestListenersNeedAuth(t *testing.T) {
	cases := []struct {
		args []string
		ok   bool
	}{
		{[]string{"--http-listen", "127.0.0.1:8080"}, true},
		{[]string{"--http-listen", "localhost:8080", "--nats-listen", "[::1]:4222"}, true},
		{[]string{"--http-listen", "0.0.0.0:8080"}, false},
		{[]string{"--http-listen", ":8080"}, false},
		{[]string{"--nats-listen", "10.0.0.5:4222"}, false},
		{[]string{"--nats-url", "nats://n1:4222"}, false}, // others reach an external server
		{[]string{"--nats-url", "nats://n1:4222", "--insecure"}, true},
		{[]string{"--nats-url", "nats://n1:4222", "--auth", "ids.json"}, true},
		{[]string{"--http-listen", "0.0.0.0:8080", "--insecure"}, true},
		{[]string{"--http-listen", "0.0.0.0:8080", "--auth", "ids.json"}, true},
	}
	for _, c := range cases {
		_, err := ParseFlags(c.args)
		if (err == nil) != c.ok {
			t.Errorf("%v: %v, want ok %v", c.args, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--auth") {
			t.Errorf("%v: %v does not say what to do", c.args, err)
		}
	}
}

// TestTLS: with --tls-cert and --tls-key both listeners speak TLS: a query over HTTPS and a
// command and a query over NATS with TLS, each checked against the test's own CA.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	m := startMain(t, func(c *Config) {
		c.Demo, c.NATSListen, c.TLSCert, c.TLSKey = true, "127.0.0.1:-1", certFile, keyFile
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + m.HTTPAddr()
	resp, err := client.Post(base+"/v1/tenants/demo/check", "application/json",
		strings.NewReader(`{"principal":"ann","permission":"case.view","min_seq":`+itoa(lastSeq(t, m))+`}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"allowed":true`) {
		t.Fatalf("HTTPS check: %d %s", resp.StatusCode, raw)
	}
	if resp, err := http.Post("http://"+m.HTTPAddr()+"/v1/tenants/demo/check", "application/json", strings.NewReader(`{}`)); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP answered %d on the TLS listener", resp.StatusCode)
		}
	}
	nc, err := nats.Connect(m.nats.ClientURL(), nats.Secure(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatalf("NATS over TLS: %v", err)
	}
	defer nc.Close()
	if a := request(t, nc, "acl.commands.demo.RegisterRecord", cmdBody("ann", `"type":"case","id":"case-tls"`)); a.raw["ok"] != true {
		t.Fatalf("command over NATS TLS: %v", a.raw)
	}
	if _, err := nats.Connect(m.nats.ClientURL(), nats.Timeout(time.Second)); err == nil {
		t.Fatal("a NATS client without TLS connected")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acld test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestForeignHostRefusedWithoutAuth: without --auth acld listens on loopback only, and a
// request whose Host names anything else is refused (403, forbidden), the query API and the
// console alike: that is how a web page in a browser on this machine reaches it through a
// name it rebinds to 127.0.0.1 (DNS rebinding), and the browser would let the page read every
// tenant's answers. Loopback names and addresses are served; with --auth (behind a gateway,
// under any name) the Host is not looked at, except by --pprof's listener, loopback only always.
func TestForeignHostRefusedWithoutAuth(t *testing.T) {
	open := startMain(t, func(c *Config) { c.Demo = true; c.Pprof = "127.0.0.1:0" })
	ids := writeIdentities(t)
	secured := startSecured(t, ids, func(c *Config) { c.Pprof = "127.0.0.1:0" })
	cases := []struct {
		name   string
		m      *Main
		token  string
		host   string
		status int
	}{
		{"127.0.0.1", open, "", "127.0.0.1", 200},
		{"localhost with its port", open, "", "localhost:8080", 200},
		{"[::1]", open, "", "[::1]:8080", 200},
		{"a rebound name", open, "", "rebound.attacker.example:8080", 403},
		{"a name that looks like loopback", open, "", "127.0.0.1.nip.io", 403},
		{"a subdomain of localhost's look-alike", open, "", "localhost.attacker.example", 403},
		{"any name with --auth", secured, ids.auditorToken, "acl.example.com", 200},
	}
	for _, c := range cases {
		base := "http://" + c.m.HTTPAddr()
		waitReady(t, base)
		for _, page := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/tenants/demo/permissions", `{"principal":"bob"}`},
			{http.MethodGet, "/ui/t/demo/p/bob", ""},
		} {
			req, _ := http.NewRequest(page.method, base+page.path, strings.NewReader(page.body))
			req.Host = c.host
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("%s, %s %s: %d %.200s, want %d", c.name, page.method, page.path, resp.StatusCode, raw, c.status)
			}
			if c.status == 403 && !strings.Contains(string(raw), `"forbidden"`) {
				t.Errorf("%s: %.200s, want a forbidden answer", c.name, raw)
			}
		}
		// --pprof listens on loopback whatever --auth says, and shows the command line
		// (--nats-password included): a foreign Host is refused there with or without --auth.
		req, _ := http.NewRequest(http.MethodGet, "http://"+c.m.pprofAddr.String()+"/debug/pprof/cmdline", nil)
		req.Host = c.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := c.status
		if c.m == secured {
			want = 403
		}
		if resp.StatusCode != want {
			t.Errorf("%s, --pprof's cmdline: %d, want %d", c.name, resp.StatusCode, want)
		}
	}
}

// TestCommandIDOfAnotherTenantIsNoDuplicate: a command id used in tenant other does not make a
// command of tenant demo with the same id a duplicate, alone or in a batch: the stream
// de-duplicates message ids across all its subjects, and with the command id alone as the
// message id, demo's command answered conflict ("already used for another command") for the
// whole duplicate window, so one tenant could block another's commands whose ids it knew or
// could derive. Within a tenant, the same id with another body is still conflict.
func TestCommandIDOfAnotherTenantIsNoDuplicate(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true; c.NATSListen = "127.0.0.1:-1" })
	nc, err := nats.Connect(m.nats.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if a := request(t, nc, "acl.commands.other.CreateTenant", cmdBody("system", `"preset":"empty","admin":{"principal":"root","kind":"staff","email":"r@o.test"}`)); a.raw["ok"] != true {
		t.Fatalf("create tenant other: %v", a.raw)
	}
	withID := func(id, actor, fields string) string {
		return fmt.Sprintf(`{"command_id":%q,"actor":%q,%s}`, id, actor, fields)
	}
	for i, how := range []string{"alone", "in a batch"} {
		id := uuid.NewString()
		if a := request(t, nc, "acl.commands.other.RegisterPrincipal", withID(id, "root", fmt.Sprintf(`"principal":"p%d","kind":"staff"`, i))); a.raw["ok"] != true {
			t.Fatalf("%s: other's command: %v", how, a.raw)
		}
		body := withID(id, "ann", fmt.Sprintf(`"type":"case","id":"same-id-%d"`, i))
		a := request(t, nc, "acl.commands.demo.RegisterRecord", body)
		if how == "in a batch" {
			a = request(t, nc, "acl.commands.demo.Batch", `{"commands":[{"command":"RegisterRecord","body":`+body+`}]}`)
			rs, _ := a.raw["results"].([]any)
			if len(rs) != 1 {
				t.Fatalf("%s: %v", how, a.raw)
			}
			a.raw = rs[0].(map[string]any)
		}
		if a.raw["ok"] != true {
			t.Errorf("%s: demo's command with other's command id: %v, want it carried out", how, a.raw)
		}
		// The control: demo's own id again with another body.
		if a := request(t, nc, "acl.commands.demo.RegisterRecord", withID(id, "ann", `"type":"case","id":"another"`)); a.code() != "conflict" {
			t.Errorf("%s: the same id in demo with another body: %v, want conflict", how, a.raw)
		}
	}
}
