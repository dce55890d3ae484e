// Package mapping holds rsgate's configuration (the YAML file that is the product's public contract) and the
// compiled route table that maps an HTTP method and path onto a backend interaction.
//
// # Configuration
//
// [Parse] and [Load] decode YAML with the yaml.v3 node API so that every problem is reported with the file,
// the line and the field that caused it, e.g.
//
//	config.yaml:14: routes[2].timeout: invalid duration "5x"
//
// Unknown keys are rejected (with a "did you mean" hint), every error in the file is collected into one
// [*ConfigError], and defaults are applied before validation, so a [*Config] returned without error is
// complete: every field holds its effective value. Each field's doc comment states its YAML key, unit and
// default; the README copies them.
//
// Configs built in Go (tests, the -demo mode) start from [NewConfig], [NewBackend] and [NewRoute], which fill
// in the defaults, and are checked with [(*Config).Validate].
//
// # Route table
//
// [Compile] turns a validated config into a [*Table]. [(*Table).Match] finds the route for a method and a
// path without allocating: path parameters are returned in a caller-owned [Params] as sub-slices of the path
// that was passed in, so they are valid only as long as that byte slice is (for fasthttp: until the handler
// returns). Routing tags are expanded with [(*CompiledRoute).AppendTag], also without allocating.
//
// Matching rules:
//   - Paths are matched segment by segment on the path exactly as given; Match itself does no cleaning and
//     no percent-decoding. ingress passes fasthttp's normalized path: percent-decoded, "//" collapsed, "."
//     and ".." segments resolved, so "/api//users/42", "/api/users/../users/42" and "/api/users/%34%32"
//     all match "/api/users/{id}" with id "42". A trailing slash is significant: "/api/x" and "/api/x/" differ.
//   - A template segment is a literal, a parameter "{name}" (one non-empty segment) or, as the last
//     segment only, a catch-all "{name...}" (the rest of the path, possibly empty, after the preceding "/").
//   - Static beats parameter beats catch-all, segment by segment from the left; the search backtracks, so a
//     less specific route still matches when the more specific branch dead-ends.
//   - A path that matches some route but not under the request's method yields [MatchMethodNotAllowed];
//     [(*Table).Allowed] gives the Allow header. WebSocket interactions (request-channel, rsocket) match GET.
//     Method "*" (the default for interaction http) matches any method. HEAD matches the GET route when
//     there is no HEAD route (the Allow header lists HEAD wherever it lists GET).

//   - Parameter values are validated after the match, by [(*CompiledRoute).CheckParams], before anything is
//     built from them (params.go): "{name}" takes [A-Za-z0-9_~-]{1,256}, "{name:RE2}" its pattern,
//     "{name:any}" anything non-empty. Patterns never change which route matches.
//
// The policy sections cors and rate_limit (top level and per route, cors.go and ratelimit.go) are parsed
// and validated here and compiled by package ingress.
//
// A Table is immutable after Compile and safe for concurrent use; a reload compiles a new one.
package mapping
