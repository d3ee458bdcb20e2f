package aggregates

import (
	"errors"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// DecodeStrict reads one JSON body the way SPEC section 7 says every body is read: field names
// matched exactly (a field in another case is unknown), unknown fields, a field given twice and
// data after the object rejected. Go's encoding/json matches names in any case and keeps the
// last of two, so a gateway reading {"actor":"system",...,"actor":"alice"} would see another
// actor than the server: the two readers of one body must never disagree. The decoder is the
// encoding/json/v2 candidate (github.com/go-json-experiment/json), whose defaults are these
// semantics, rather than hand checks on top of v1.
//
// The error is invalid_argument with a sentence a person can act on, prefixed by what.
func DecodeStrict(what string, body []byte, v any) *Error {
	return decode(what, body, v, jsonv2.RejectUnknownMembers(true))
}

// DecodeLenient reads the fields of v that body has and ignores the others, but like
// DecodeStrict matches names exactly and rejects a name given twice: a server peeking at a
// body's min_seq before the strict decoding of the whole must read the same value.
func DecodeLenient(what string, body []byte, v any) *Error {
	return decode(what, body, v)
}

func decode(what string, body []byte, v any, opts ...jsonv2.Options) *Error {
	err := jsonv2.Unmarshal(body, v, opts...)
	if err == nil {
		return nil
	}
	return &Error{Code: CodeInvalidArgument, Message: what + ": " + jsonProblem(err), Err: err}
}

// jsonProblem says what is wrong with a body without the decoder's Go type names.
func jsonProblem(err error) string {
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syn):
		return "field " + pointerName(string(syn.JSONPointer)) + " is given twice; give each field once"
	case errors.As(err, &sem) && errors.Is(sem.Err, jsonv2.ErrUnknownName):
		return "unknown field " + pointerName(string(sem.JSONPointer)) + " (field names are lower snake case and matched exactly)"
	case errors.As(err, &sem) && sem.JSONKind != 0 && sem.GoType != nil:
		where := ""
		if sem.JSONPointer != "" {
			where = "field " + pointerName(string(sem.JSONPointer)) + ": "
		}
		return where + "a JSON " + sem.JSONKind.String() + " cannot be read as " + goKind(sem.GoType.Kind().String())
	case errors.As(err, &syn):
		msg := strings.TrimPrefix(syn.Error(), "jsontext: ")
		if syn.ByteOffset == 0 && strings.Contains(msg, "unexpected EOF") {
			return "empty; a body is a JSON object"
		}
		return "malformed JSON: " + msg
	}
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "json: "), "jsontext: ")
}

// pointerName turns a JSON pointer ("/record/type") into a quoted field path ("record.type").
func pointerName(p string) string {
	p = strings.TrimPrefix(p, "/")
	p = strings.ReplaceAll(p, "/", ".")
	p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	return `"` + p + `"`
}

// goKind names a Go kind the way the wire reads: a string, a number, a list, an object.
func goKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "an integer"
	}
	return k
}
