// Package deploy holds rsgate's Kubernetes manifests (see README.md); it has no code. Its test decodes every
// manifest, checks the settings the README promises, and validates the configuration in the ConfigMap with
// the mapping package and with `gateway -check`.
package deploy
