package mapping

// CheckBackend validates one backend built in Go with the rules and messages Validate applies to every
// backend of a configuration (fields are named "backends.<name>.<key>"). Packages that take a *Backend
// (pool.New) call it instead of keeping their own copy of the rules. The error is a *ConfigError.
func CheckBackend(name string, b *Backend) error {
	errs := &errorList{}
	c := &Config{Backends: map[string]*Backend{name: b}, lines: map[string]int{}}
	if b != nil && b.Line > 0 {
		c.lines["backends."+name] = b.Line
	}
	v := &validator{c: c, errs: errs}
	v.backend("backends."+name, name, b)
	return errs.err()
}
