package mapping

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the work of one decode, so that alias bombs ("billion laughs") fail fast.
const maxNodes = 1 << 20

// Parse decodes, defaults and validates a configuration. filename is used in error messages only. Every
// problem found is reported in one *ConfigError whose entries read "file:line: field: message".
func Parse(data []byte, filename string) (*Config, error) {
	errs := &errorList{file: filename}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		fe := yamlSyntaxError(filename, err)
		// yaml.v3 names the start of the enclosing block for an indentation mistake; find the line itself.
		if p, ok := findIndentProblem(data); ok && p.line >= fe.Line {
			fe = FieldError{File: filename, Line: p.line, Field: p.field, Msg: p.msg}
		}
		errs.errs = append(errs.errs, fe)
		return nil, errs.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			errs.errs = append(errs.errs, yamlSyntaxError(filename, err))
		} else {
			line := extra.Line
			if len(extra.Content) > 0 {
				line = extra.Content[0].Line
			}
			errs.add(line, "", "only one YAML document is allowed (found a second \"---\")")
		}
		return nil, errs.err()
	}

	cfg := NewConfig()
	cfg.File = filename
	d := &decoder{errs: errs, lines: map[string]int{}, bad: map[string]bool{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		d.value(root.Content[0], reflect.ValueOf(cfg).Elem(), "", "")
	}
	cfg.lines, cfg.bad = d.lines, d.bad
	if !d.bad[""] {
		d.resolve(cfg)
		cfg.validate(errs)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlSyntaxError turns a yaml.v3 error ("yaml: line 3: did not find expected key") into a FieldError.
func yamlSyntaxError(file string, err error) FieldError {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return FieldError{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// decoder walks a yaml.v3 node tree into Go values by reflection, guided by the `yaml` struct tags. It
// records the line of every key it sees (lines, by field path) so that validation can point at fields and
// defaulting can tell "absent" from "zero".
type decoder struct {
	errs  *errorList
	lines map[string]int
	bad   map[string]bool // fields whose value could not be decoded: validation stays quiet about them
	nodes int
}

// fail reports a value that cannot be decoded into field.
func (d *decoder) fail(line int, field, format string, args ...any) {
	d.bad[field] = true
	d.errs.add(line, field, format, args...)
}

var durationType = reflect.TypeFor[Duration]()

// structField describes one YAML key of a struct type.
type structField struct {
	key   string
	index int
	unit  string // "bytes": integer or size string; "connections"/"workers": integer or "auto" (AutoConnections, AutoWorkers)
}

var structFieldsCache sync.Map // reflect.Type -> []structField

func structFields(t reflect.Type) []structField {
	if f, ok := structFieldsCache.Load(t); ok {
		return f.([]structField)
	}
	var fields []structField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if !sf.IsExported() || tag == "-" || tag == "" {
			continue
		}
		key, _, _ := strings.Cut(tag, ",")
		fields = append(fields, structField{key: key, index: i, unit: sf.Tag.Get("unit")})
	}
	structFieldsCache.Store(t, fields)
	return fields
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "boolean " + n.Value
		case "!!int", "!!float":
			return "number " + n.Value
		}
		return "string " + strconv.Quote(n.Value)
	}
	return "an unsupported node"
}

// deref follows aliases and charges the node budget. It returns nil when the budget is exhausted.
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes == maxNodes {
		d.fail(n.Line, "", "document too large or too many alias expansions")
	}
	if d.nodes >= maxNodes {
		return nil
	}
	return n
}

// value decodes n into v (settable). field is the dotted path used in messages.
func (d *decoder) value(n *yaml.Node, v reflect.Value, field, unit string) {
	if n = d.deref(n); n == nil {
		return
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || n.ShortTag() == "!!bool" {
			d.fail(n.Line, field, "expected a duration such as \"5s\", got %s", kindName(n))
			return
		}
		dur, err := parseDuration(n.Value, n.ShortTag())
		if err != nil {
			d.fail(n.Line, field, "%s", err.Error())
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if sh, ok := v.Addr().Interface().(scalarShorthand); ok && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			if s, ok := d.str(n, field); ok {
				sh.setScalar(s) // "auth: users" for "auth: {provider: users}"
			}
			return
		}
		d.mapping(n, v, field)
	case reflect.Pointer:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			v.SetZero()
			return
		}
		nv := reflect.New(v.Type().Elem())
		d.value(n, nv.Elem(), field, unit)
		v.Set(nv)
	case reflect.Map:
		d.mapValue(n, v, field)
	case reflect.Slice:
		d.slice(n, v, field)
	case reflect.String:
		s, ok := d.str(n, field)
		if ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n.Line, field, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Int:
		d.integer(n, v, field, unit)
	case reflect.Float64:
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || tag != "!!int" && tag != "!!float" {
			d.fail(n.Line, field, "expected a number, got %s", kindName(n))
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil {
			switch strings.ToLower(n.Value) {
			case ".nan":
				f = math.NaN()
			case ".inf", "+.inf":
				f = math.Inf(1)
			case "-.inf":
				f = math.Inf(-1)
			default:
				d.fail(n.Line, field, "invalid number %q", n.Value)
				return
			}
		}
		v.SetFloat(f)
	default:
		panic("mapping: unsupported config field type " + v.Type().String())
	}
}

func (d *decoder) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, field, "expected a string, got %s", kindName(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
		return n.Value, true
	case "!!null":
		return "", true
	case "!!binary":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(n.Value), ""))
		if err != nil {
			d.fail(n.Line, field, "invalid !!binary value")
			return "", false
		}
		return string(b), true
	}
	d.fail(n.Line, field, "expected a string, got %s (quote it)", kindName(n))
	return "", false
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, field, unit string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, field, "expected a number, got %s", kindName(n))
		return
	}
	if unit == "connections" && n.ShortTag() == "!!str" && n.Value == "auto" {
		v.SetInt(int64(AutoConnections()))
		return
	}
	if unit == "workers" && n.ShortTag() == "!!str" && n.Value == "auto" {
		v.SetInt(int64(AutoWorkers()))
		return
	}
	if unit == "bytes" && n.ShortTag() != "!!bool" && n.ShortTag() != "!!null" {
		size, err := parseSize(n.Value)
		if err != nil {
			d.fail(n.Line, field, "%s", err.Error())
			return
		}
		v.SetInt(int64(size))
		return
	}
	if n.ShortTag() != "!!int" {
		if unit == "connections" || unit == "workers" {
			d.fail(n.Line, field, "expected an integer or \"auto\", got %s", kindName(n))
			return
		}
		d.fail(n.Line, field, "expected an integer, got %s", kindName(n))
		return
	}
	i, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil || i != int64(int(i)) {
		d.fail(n.Line, field, "invalid or out-of-range integer %s", n.Value)
		return
	}
	v.SetInt(i)
}

// mapping decodes a YAML mapping into the struct v, rejecting unknown and duplicate keys. Merge keys
// ("<<: *anchor") are applied first so that explicit keys win, as YAML specifies.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "key:" with nothing: keep the defaults
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, field, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.merge(n.Content[i+1], v, field)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errs.add(k.Line, field, "keys must be strings, got %s", kindName(k))
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			d.errs.add(k.Line, join(field, key), "duplicate key (first at line %d)", first)
			continue
		}
		seen[key] = k.Line
		sf, ok := findField(fields, key)
		if !ok {
			d.unknownKey(k, field, fields)
			continue
		}
		path := join(field, key)
		d.lines[path] = k.Line
		d.value(val, v.Field(sf.index), path, sf.unit)
	}
}

func (d *decoder) merge(n *yaml.Node, v reflect.Value, field string) {
	if n = d.deref(n); n == nil {
		return
	}
	if n.Kind == yaml.SequenceNode {
		for i := len(n.Content) - 1; i >= 0; i-- { // earlier entries win
			d.mapping(d.deref(n.Content[i]), v, field)
		}
		return
	}
	d.mapping(n, v, field)
}

func findField(fields []structField, key string) (structField, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return structField{}, false
}

func (d *decoder) unknownKey(k *yaml.Node, field string, fields []structField) {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key
	}
	msg := "unknown key " + strconv.Quote(k.Value)
	if s := suggest(k.Value, names); s != "" {
		msg += " (did you mean " + strconv.Quote(s) + "?)"
	}
	d.errs.add(k.Line, field, "%s", msg)
}

// mapValue decodes a mapping with string keys: backends (name -> *Backend), errors (string -> int) and
// rsocket.routes (string -> string).
func (d *decoder) mapValue(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, field, "expected a mapping, got %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	elemType := v.Type().Elem()
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := d.deref(n.Content[i]), n.Content[i+1]
		if k == nil {
			return
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" || k.ShortTag() == "!!merge" {
			d.errs.add(k.Line, field, "keys must be strings, got %s", kindName(k))
			continue
		}
		key := k.Value
		path := join(field, key)
		if first, dup := seen[key]; dup {
			d.errs.add(k.Line, path, "duplicate key (first at line %d)", first)
			continue
		}
		seen[key] = k.Line
		d.lines[path] = k.Line
		var elem reflect.Value
		if elemType == reflect.TypeFor[*Backend]() {
			b := NewBackend(key)
			b.Line = k.Line
			d.value(val, reflect.ValueOf(b).Elem(), path, "")
			elem = reflect.ValueOf(b)
		} else if elemType == reflect.TypeFor[*AuthProvider]() {
			p := NewAuthProvider(key)
			p.Line = k.Line
			d.value(val, reflect.ValueOf(p).Elem(), path, "")
			elem = reflect.ValueOf(p)
		} else {
			elem = reflect.New(elemType).Elem()
			d.value(val, elem, path, "")
		}
		v.SetMapIndex(reflect.ValueOf(key), elem)
	}
}

// slice decodes a sequence: routes (of *Route) or a string list. A single string is accepted as a
// one-element string list ("addresses: 127.0.0.1:7878").
func (d *decoder) slice(n *yaml.Node, v reflect.Value, field string) {
	elemType := v.Type().Elem()
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind == yaml.ScalarNode && elemType.Kind() == reflect.String {
		if s, ok := d.str(n, field); ok {
			v.Set(reflect.ValueOf([]string{s}))
		}
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, field, "expected a list, got %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		path := field + "[" + strconv.Itoa(i) + "]"
		if elemType == reflect.TypeFor[*Route]() {
			r := newRoute()
			it := item
			for i := 0; i < 100 && it.Kind == yaml.AliasNode && it.Alias != nil; i++ {
				it = it.Alias
			}
			r.Line = it.Line
			d.lines[path] = it.Line
			d.value(item, reflect.ValueOf(r).Elem(), path, "")
			out.Index(i).Set(reflect.ValueOf(r))
			continue
		}
		d.lines[path] = item.Line
		d.value(item, out.Index(i), path, "")
	}
	v.Set(out)
}

// resolve applies the defaults that depend on other fields, using which keys were present, and rejects
// sections given for an interaction that does not use them.
func (d *decoder) resolve(c *Config) {
	if c.Admin == "off" {
		c.Admin = ""
	}
	for name, b := range c.Backends {
		if b == nil || b.Transport == TransportHTTP {
			continue
		}
		if l, ok := d.lines["backends."+name+".http"]; ok && b.Transport != "" {
			d.errs.add(l, "backends."+name+".http", "only for transport http (this backend is %s)", b.Transport)
		}
		b.HTTP = HTTPOptions{} // unused: keep marshalled configs free of it
	}
	for i, r := range c.Routes {
		if r == nil {
			continue
		}
		prefix := "routes[" + strconv.Itoa(i) + "]."
		set := func(key string) bool { _, ok := d.lines[prefix+key]; return ok }
		check := func(key string, ok bool, what string) {
			if set(key) && !ok && r.Interaction != "" {
				d.errs.add(d.lines[prefix+key], prefix+key, "only for %s (this route is %s)", what, r.Interaction)
			}
		}
		check("stream", r.usesStream(), "request-stream and request-channel")
		check("websocket", r.IsWebSocket(), "request-channel and rsocket")
		check("rsocket", r.Interaction == InteractionRSocket, "rsocket")
		check("rewrite", r.Interaction == InteractionHTTP || r.targetsTransport(c, true),
			"http, or a route with an http split or shadow backend")
		if !set("max_body") {
			r.MaxBody = c.Limits.MaxBody
		}
		if !set("stream.idle_timeout") {
			r.Stream.IdleTimeout = c.Limits.StreamIdleTimeout // stream_keys.go
		}
		r.resolveResilience(set, func(key, format string, args ...any) {
			d.errs.add(d.lines[prefix+key], prefix+key, format, args...)
		})
		r.resolveDefaults(set)
		r.resolveShadow(c, func(key string) bool { return set("shadow." + key) })
		r.resolveAdmission(c, func(key string) bool { return set("admission." + key) })
	}
}
