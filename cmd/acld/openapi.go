package main

import _ "embed"

// openAPI describes the HTTP query API (OpenAPI 3.1), served at /openapi.json so that services
// in any language can generate a client. TestOpenAPI checks it against the server: every query
// described, real answers valid.
//
//go:embed openapi.json
var openAPI []byte
