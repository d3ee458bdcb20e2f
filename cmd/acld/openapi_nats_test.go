package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
)

var updateOpenAPI = flag.Bool("update-openapi", false, "rewrite the command schemas of openapi.json from the Go types")

// commandSchema is the JSON schema of a command body, read off its Go type: what DecodeStrict
// accepts (exact names, no other field). Embedded structs are inlined, as encoding/json does.
func commandSchema(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": commandSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": commandSchema(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		var walk func(reflect.Type)
		walk = func(st reflect.Type) {
			for i := range st.NumField() {
				f := st.Field(i)
				tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if tag == "-" {
					continue
				}
				if f.Anonymous && tag == "" {
					walk(f.Type)
					continue
				}
				if tag == "" {
					tag = f.Name
				}
				props[tag] = commandSchema(f.Type)
			}
		}
		walk(t)
		return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	}
	panic("commandSchema: " + t.String())
}

// TestOpenAPIDescribesNATS: the description's x-nats part names the command and query subjects,
// has a body schema for every command, equal to what its Go type accepts (go test -run
// OpenAPIDescribesNATS -update-openapi rewrites them after a change), and a real command's
// answer and a refused one's validate against the answer schema.
func TestOpenAPIDescribesNATS(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	changed := false
	for _, name := range aggregates.CommandNames {
		want := commandSchema(reflect.TypeOf(aggregates.NewCommand(name)))
		want["description"] = "NATS request body of acl.commands.{tenant}." + name + " (SPEC section 7); command_id and actor are required."
		key := name + "Command"
		if toJSON(schemas[key]) != toJSON(want) {
			if !*updateOpenAPI {
				t.Errorf("openapi.json: schema %s differs from the Go type; run go test ./cmd/acld -run OpenAPIDescribesNATS -update-openapi", key)
				continue
			}
			schemas[key], changed = want, true
		}
	}
	if changed {
		b, _ := json.MarshalIndent(doc, "", " ")
		if err := os.WriteFile("openapi.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Skip("openapi.json rewritten: build again and rerun")
	}
	ext, _ := doc["x-nats"].(map[string]any)
	if ext == nil || !strings.Contains(toJSON(ext), "acl.commands.{tenant}.{command}") || !strings.Contains(toJSON(ext), "acl.queries.{tenant}.{query}") {
		t.Fatalf("x-nats: %v", ext)
	}

	loaded, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	answer := loaded.Components.Schemas["CommandAnswer"]
	if answer == nil {
		t.Fatal("no CommandAnswer schema")
	}
	m := startMain(t, func(c *Config) { c.Demo = true })
	nc, err := nats.Connect("", nats.InProcessServer(m.nats))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The bulk path's answers: results up to a refusal, and a request refused whole.
	batch := loaded.Components.Schemas["BatchAnswer"]
	if batch == nil {
		t.Fatal("no BatchAnswer schema")
	}
	for _, body := range []string{
		`{"commands":[{"command":"AssignRole","body":` + cmdBody("ann", `"principal":"carl","role":"administrator"`) +
			`},{"command":"AssignRole","body":` + cmdBody("bob", `"principal":"ann","role":"staff"`) + `}]}`,
		`{"commands":[],"extra":1}`,
	} {
		msg, err := nc.RequestWithContext(context.Background(), "acl.commands.demo.Batch", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		json.Unmarshal(msg.Data, &v)
		if err := batch.Value.VisitJSON(v); err != nil {
			t.Fatalf("batch answer %s does not match BatchAnswer: %v", msg.Data, err)
		}
		if !strings.Contains(string(msg.Data), "forbidden") && !strings.Contains(string(msg.Data), "invalid_argument") {
			t.Fatalf("batch answer %s: want a refusal in it", msg.Data)
		}
	}
	for _, body := range []string{
		cmdBody("ann", `"principal":"bob","role":"administrator","dry_run":true`), // a dry run with effects
		cmdBody("bob", `"principal":"ann","role":"administrator","dry_run":true`), // a dry run's refusal
		cmdBody("ann", `"principal":"bob","role":"administrator"`),
		cmdBody("bob", `"principal":"ann","role":"staff"`), // forbidden
		`{"actor":"ann"}`, // invalid_argument
	} {
		msg, err := nc.RequestWithContext(context.Background(), "acl.commands.demo.AssignRole", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		json.Unmarshal(msg.Data, &v)
		if err := answer.Value.VisitJSON(v); err != nil {
			t.Fatalf("answer %s does not match CommandAnswer: %v", msg.Data, err)
		}
		// The same body validates against the command's schema when it is well formed.
		if !strings.Contains(body, "command_id") {
			continue
		}
		var b any
		json.Unmarshal([]byte(body), &b)
		if err := loaded.Components.Schemas["AssignRoleCommand"].Value.VisitJSON(b); err != nil {
			t.Fatalf("body %s does not match AssignRoleCommand: %v", body, err)
		}
	}
}
