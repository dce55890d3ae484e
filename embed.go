// Package rsgate holds what the gateway binary embeds from the repository root: the example configuration
// that `gateway -demo` runs when no -config is given. The code lives in the packages below this one; see
// ARCHITECTURE.md.
package rsgate

import _ "embed"

// ExampleConfig is config.example.yaml, the configuration `gateway -demo` uses by default.
//
//go:embed config.example.yaml
var ExampleConfig []byte

// ExampleConfigName is the file name reported in configuration errors about ExampleConfig.
const ExampleConfigName = "config.example.yaml"
