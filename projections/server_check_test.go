package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestCheckAnswerJSON: the hand-written check answer is json.Marshal's, byte for byte, for
// strings that need no escape and for every kind that does (HTML characters, controls, quotes,
// invalid UTF-8, U+2028), and for nil and empty lists.
func TestCheckAnswerJSON(t *testing.T) {
	strs := []string{"", "bob", "invoice.view", "role:staff", "01a2265a-8526-7afb-ab6d-800e189726bb",
		"a <b> & c", `say "hi"`, `back\slash`, "tab\there", "nl\nx", "\b\f\r\x01\x1f\x7f", "é ü 日本",
		"bad \xff utf8", "line\u2028sep\u2029", "role accountant grants invoice.view at scope all; bob is assignee of case-7"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return strs[rng.IntN(len(strs))] }
	list := func() []string {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		var xs []string
		for range 1 + rng.IntN(3) {
			xs = append(xs, pick())
		}
		return xs
	}
	for i := range 2000 {
		a := CheckAnswer{Allowed: rng.IntN(2) == 0, Seq: rng.Uint64() >> rng.IntN(64), Reason: pick(), Events: list()}
		switch rng.IntN(3) {
		case 0:
		case 1:
			a.Grants = []aggregates.GrantUse{}
		default:
			for range 1 + rng.IntN(3) {
				g := aggregates.GrantUse{Permission: pick(), Scope: pick(), Source: pick(), Events: list()}
				if rng.IntN(2) == 0 {
					g.NarrowedFrom = pick()
				}
				g.Unscoped = rng.IntN(3) == 0
				a.Grants = append(a.Grants, g)
			}
		}
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendCheckAnswer([]byte("prefix"), &a); !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("answer %d:\n got %s\nwant %s", i, got[len("prefix"):], want)
		}
	}
}

// checkBody is what the general path decodes a check body into (NewServer's check handler).
type checkBody struct {
	Common
	CheckQuery
}

// TestParseCheck: a body the fast parser accepts decodes to the same query with the general
// decoder; bodies it must leave to the general decoder are refused.
func TestParseCheck(t *testing.T) {
	accepted := []string{
		`{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"i1"}}`,
		`{"principal":"bob","permission":"session.login"}`,
		`{"permission":"case.view","principal":"bob","min_seq":42}`,
		` { "record" : { "id" : "i1" , "type" : "invoice" } , "principal" : "b" , "permission" : "x" , "min_seq" : 0 } ` + "\n",
		`{}`, `{"record":{}}`, `{"principal":""}`, `{"principal":"b b"}`, `{"min_seq":18446744073709551}`,
	}
	for _, b := range accepted {
		q, seq, ok := parseCheck([]byte(b))
		if !ok {
			t.Fatalf("%s: not accepted", b)
		}
		var want checkBody
		if err := DecodeBody([]byte(b), &want); err != nil {
			t.Fatalf("%s: the general decoder refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(q, want.CheckQuery) || seq != want.MinSeq || len(want.AsOf) > 0 {
			t.Fatalf("%s: fast %+v %d, general %+v", b, q, seq, want)
		}
	}
	refused := []string{
		``, `[]`, `null`, `{`, `{"principal":"bob"`, `{"principal":"bob"}x`, `{"principal":"bob"}{}`,
		`{"principal":"bob","as_of":4}`, `{"principal":"bob","as_of":null}`, `{"Principal":"bob"}`,
		`{"principal":"bob","principal":"al"}`, `{"principal":"b\u006fb"}`, `{"principal":"b\"b"}`,
		`{"principal":"bé"}`, "{\"principal\":\"b\tb\"}", `{"principal":1}`, `{"principal":null}`,
		`{"record":null}`, `{"record":{"type":"a","type":"b"}}`, `{"record":{"type":"a","idd":"b"}}`,
		`{"record":{"type":1}}`, `{"record":[]}`, `{"min_seq":-1}`, `{"min_seq":1.5}`, `{"min_seq":1e3}`,
		`{"min_seq":01}`, `{"min_seq":"1"}`, `{"min_seq":12345678901234567890}`, `{"min_seq":null}`,
		`{"principal":"bob",}`, `{,}`, `{"extra":1}`,
	}
	for _, b := range refused {
		if _, _, ok := parseCheck([]byte(b)); ok {
			t.Fatalf("%s: accepted", b)
		}
	}
}

// FuzzParseCheck: whatever the fast parser accepts, the general decoder accepts and reads the
// same way.
func FuzzParseCheck(f *testing.F) {
	for _, s := range []string{`{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"i1"},"min_seq":7}`,
		`{"record":{"id":"x"}}`, `{"min_seq":0}`, `{}`, `{"principal":"bob","Principal":"ann"}`,
		`{"principal":"bob","principal":"ann"}`, `{"record":{"type":"a","Type":"b"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, seq, ok := parseCheck(b)
		if !ok {
			return
		}
		var want checkBody
		if err := DecodeBody(b, &want); err != nil {
			t.Fatalf("%q: accepted, the general decoder refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(q, want.CheckQuery) || seq != want.MinSeq || len(want.AsOf) > 0 {
			t.Fatalf("%q: fast %+v %d, general %+v", b, q, seq, want)
		}
	})
}

// TestCheckFastPathAnswers: over HTTP and NATS, a check body the fast path reads gets the bytes
// the general path gives the same question (a key with an escape, which names the same field,
// takes the general path), errors included.
func TestCheckFastPathAnswers(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	var bodies []string
	for _, p := range []string{"alice", "bob", "carol", "nobody", "b b"} {
		for _, perm := range []string{"case.view", "invoice.view", "client.view", "invoice.edit", "session.login", "case.veiw", ""} {
			for _, rec := range []*events.RecordRef{nil, {Type: "case", ID: "c1"}, {Type: "invoice", ID: "i1"},
				{Type: "client", ID: "cl1"}, {Type: "case", ID: "nope"}} {
				b := fmt.Sprintf(`{"principal":%q,"permission":%q`, p, perm)
				if rec != nil {
					b += fmt.Sprintf(`,"record":{"type":%q,"id":%q}`, rec.Type, rec.ID)
				}
				bodies = append(bodies, b+`,"min_seq":1}`)
			}
		}
	}
	for _, b := range bodies {
		if _, _, ok := parseCheck([]byte(b)); !ok {
			t.Fatalf("%s: not on the fast path", b)
		}
		general := strings.Replace(b, `"principal"`, `"princ\u0069pal"`, 1)
		if _, _, ok := parseCheck([]byte(general)); ok {
			t.Fatalf("%s: on the fast path", general)
		}
		fs, _, fb := post(t, f.http.URL+"/v1/tenants/acme/check", b)
		gs, _, gb := post(t, f.http.URL+"/v1/tenants/acme/check", general)
		if fs != gs || !bytes.Equal(fb, gb) {
			t.Fatalf("%s:\nfast    %d %s\ngeneral %d %s", b, fs, fb, gs, gb)
		}
		m, err := f.env.Conn.Request("acl.queries.acme.check", []byte(b), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(gb, []byte("\n")); !bytes.Equal(m.Data, want) {
			t.Fatalf("%s over NATS:\n got %s\nwant %s", b, m.Data, want)
		}
	}
}

// TestOwnAsOf: a handler registered with OwnAsOf gets a body with as_of as it is, over the live
// engine; the server neither calls the AsOf hook nor parses as_of for it.
func TestOwnAsOf(t *testing.T) {
	calls := 0
	var f *fixture
	f = newFixture(t, ServerOptions{AsOf: func(ctx context.Context, tenant string, at Moment) (*Engine, func(), error) {
		calls++
		return f.eng, func() {}, nil
	}})
	f.srv.Handle("history", func(ctx context.Context, r Request) (any, error) {
		var b struct {
			Common
			Principal string `json:"principal"`
		}
		if err := DecodeBody(r.Body, &b); err != nil {
			return nil, err
		}
		return map[string]any{"as_of": string(b.AsOf), "moment": r.AsOf != nil, "live": r.Engine == f.eng}, nil
	}, OwnAsOf())
	for _, body := range []string{`{"principal":"bob","as_of":4}`, `{"principal":"bob","as_of":"not a time"}`} {
		status, _, b := post(t, f.http.URL+"/v1/tenants/acme/history", body)
		if status != 200 || !strings.Contains(string(b), `"moment":false`) || !strings.Contains(string(b), `"live":true`) {
			t.Fatalf("%s: %d %s", body, status, b)
		}
	}
	if calls != 0 {
		t.Fatalf("AsOf hook called %d times for a handler that reads as_of itself", calls)
	}
}
