package mapping

import (
	"bytes"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Params holds the path parameters of one match: sub-slices of the path given to Match, in path order,
// valid as long as that path's bytes are. A Params is reused across requests (Match resets it); its zero
// value is ready to use. Not safe for concurrent use.
type Params struct {
	names []string // the matched route's parameter names (shared, read-only)
	vals  [MaxParams][]byte
	n     int
}

// Reset empties p.
func (p *Params) Reset() {
	for i := 0; i < p.n; i++ {
		p.vals[i] = nil
	}
	p.names, p.n = nil, 0
}

// Len returns the number of parameters.
func (p *Params) Len() int { return p.n }

// Name returns the name of the i-th parameter (0 <= i < Len()).
func (p *Params) Name(i int) string { return p.names[i] }

// Value returns the value of the i-th parameter (0 <= i < Len()).
func (p *Params) Value(i int) []byte { return p.vals[i] }

// Get returns the value of the named parameter, or nil when the route has no such parameter. A
// catch-all parameter may be empty but is never nil when present.
func (p *Params) Get(name string) []byte {
	for i := 0; i < p.n && i < len(p.names); i++ {
		if p.names[i] == name {
			if p.vals[i] == nil {
				return []byte{}
			}
			return p.vals[i]
		}
	}
	return nil
}

func (p *Params) push(v []byte) {
	p.vals[p.n] = v
	p.n++
}

func (p *Params) pop() {
	p.n--
	p.vals[p.n] = nil
}

// MatchResult is the outcome of Table.Match.
type MatchResult uint8

const (
	MatchNotFound         MatchResult = iota // no route matches the path: 404
	MatchOK                                  // a route matches method and path
	MatchMethodNotAllowed                    // some route matches the path, none the method: 405 + Allow
)

// String returns "not found", "ok" or "method not allowed".
func (r MatchResult) String() string {
	switch r {
	case MatchNotFound:
		return "not found"
	case MatchOK:
		return "ok"
	case MatchMethodNotAllowed:
		return "method not allowed"
	}
	return "MatchResult(" + strconv.Itoa(int(r)) + ")"
}

// Table is the compiled route table: a segment trie keyed by literal segments, with one parameter child
// and one catch-all child per node. Immutable after Compile; safe for concurrent use.
type Table struct {
	root   *node
	routes []*CompiledRoute
	byName map[string]*CompiledRoute
	config *Config
}

// node is one trie position (after a "/"). Children are tried static, then parameter, then catch-all.
type node struct {
	labels   []string         // static children labels, sorted (linear scan when few)
	children []*node          // parallel to labels
	index    map[string]*node // static children by label when there are many
	param    *node
	catchAll *node

	// Routes ending at this node.
	methods []methodRoute
	any     *CompiledRoute // method "*"
	allow   string         // sorted, comma-separated methods for the Allow header
}

type methodRoute struct {
	method string
	route  *CompiledRoute
}

// staticIndexMin is the number of static children above which a map is used instead of a scan.
const staticIndexMin = 8

// Compile validates cfg (see Config.Validate) and builds its route table.
func Compile(cfg *Config) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Table{root: &node{}, byName: make(map[string]*CompiledRoute, len(cfg.Routes)), config: cfg}
	errs := &errorList{file: cfg.File}
	for i, r := range cfg.Routes {
		cr, err := compileRoute(cfg, r)
		if err != nil { // unreachable after Validate; kept so Compile never trusts its input blindly
			errs.add(r.Line, "routes["+strconv.Itoa(i)+"]", "%s", err.Error())
			continue
		}
		cr.Index = i
		if !t.insert(cr) {
			errs.add(r.Line, "routes["+strconv.Itoa(i)+"].path", "%s %s conflicts with another route", r.Method, r.Path)
			continue
		}
		t.routes = append(t.routes, cr)
		t.byName[r.Name] = cr
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	t.root.finish()
	return t, nil
}

// insert adds cr at the end of its path; false when method+path is taken.
func (t *Table) insert(cr *CompiledRoute) bool {
	n := t.root
	for _, s := range cr.path.segs {
		switch s.kind {
		case segStatic:
			i, found := slices.BinarySearch(n.labels, s.text)
			if !found {
				n.labels = slices.Insert(n.labels, i, s.text)
				n.children = slices.Insert(n.children, i, &node{})
			}
			n = n.children[i]
		case segParam:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		case segCatchAll:
			if n.catchAll == nil {
				n.catchAll = &node{}
			}
			n = n.catchAll
		}
	}
	if cr.Method == MethodAny {
		if n.any != nil {
			return false
		}
		n.any = cr
		return true
	}
	for _, m := range n.methods {
		if m.method == cr.Method {
			return false
		}
	}
	n.methods = append(n.methods, methodRoute{cr.Method, cr})
	return true
}

// finish builds the lookup maps and Allow strings, recursively.
func (n *node) finish() {
	if len(n.labels) > staticIndexMin {
		n.index = make(map[string]*node, len(n.labels))
		for i, l := range n.labels {
			n.index[l] = n.children[i]
		}
	}
	if len(n.methods) > 0 {
		ms := make([]string, len(n.methods))
		for i, m := range n.methods {
			ms[i] = m.method
		}
		n.allow = allowString(ms)
	}
	for _, c := range n.children {
		c.finish()
	}
	if n.param != nil {
		n.param.finish()
	}
	if n.catchAll != nil {
		n.catchAll.finish()
	}
}

func (n *node) static(seg []byte) *node {
	if n.index != nil {
		return n.index[string(seg)]
	}
	for i, l := range n.labels {
		if l == string(seg) {
			return n.children[i]
		}
	}
	return nil
}

func (n *node) hasRoutes() bool { return len(n.methods) > 0 || n.any != nil }

func (n *node) route(method []byte) *CompiledRoute {
	for i := range n.methods {
		if n.methods[i].method == string(method) {
			return n.methods[i].route
		}
	}
	return n.any
}

// Match finds the route for method and path. path is the request path without the query string, exactly
// as it will be matched (Match does no cleaning or decoding: ingress passes fasthttp's normalized path). On
// MatchOK, ps holds the parameters (sub-slices of path); otherwise ps is empty. A HEAD request with no HEAD
// route is matched as GET (RFC 9110 9.3.2: HEAD is served wherever GET is; the caller sends no body).
// Match does not allocate.
func (t *Table) Match(method, path []byte, ps *Params) (*CompiledRoute, MatchResult) {
	ps.Reset()
	if len(path) == 0 || path[0] != '/' {
		return nil, MatchNotFound
	}
	hit := false
	r := t.root.match(path[1:], method, ps, &hit)
	if r != nil {
		ps.names = r.path.params
		return r, MatchOK
	}
	if hit && string(method) == "HEAD" {
		return t.Match(strGET, path, ps)
	}
	if hit {
		return nil, MatchMethodNotAllowed
	}
	return nil, MatchNotFound
}

var strGET = []byte("GET")

// match searches below n for rest (the path after a "/"), depth first: static, parameter, catch-all.
// hit is set when some route matched the path under another method.
func (n *node) match(rest, method []byte, ps *Params, hit *bool) *CompiledRoute {
	seg, tail, more := rest, []byte(nil), false
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		seg, tail, more = rest[:i], rest[i+1:], true
	}
	if c := n.static(seg); c != nil {
		if r := c.end(tail, more, method, ps, hit); r != nil {
			return r
		}
	}
	if n.param != nil && len(seg) > 0 {
		ps.push(seg)
		if r := n.param.end(tail, more, method, ps, hit); r != nil {
			return r
		}
		ps.pop()
	}
	if c := n.catchAll; c != nil {
		if c.hasRoutes() {
			ps.push(rest)
			if r := c.route(method); r != nil {
				return r
			}
			ps.pop()
			*hit = true
		}
	}
	return nil
}

// end continues at child c: either the path ends here (more == false) or the search goes on with tail.
func (c *node) end(tail []byte, more bool, method []byte, ps *Params, hit *bool) *CompiledRoute {
	if more {
		return c.match(tail, method, ps, hit)
	}
	if !c.hasRoutes() {
		return nil
	}
	if r := c.route(method); r != nil {
		return r
	}
	*hit = true
	return nil
}

// Allowed returns the methods that have a route for path, comma-separated and sorted, for an Allow
// header ("" when none, or when a method "*" route matches). It allocates only when routes on several
// templates match the path.
func (t *Table) Allowed(path []byte) string {
	if len(path) == 0 || path[0] != '/' {
		return ""
	}
	var found []*node
	t.root.collect(path[1:], &found)
	for _, n := range found {
		if n.any != nil {
			return ""
		}
	}
	switch len(found) {
	case 0:
		return ""
	case 1:
		return found[0].allow
	}
	var ms []string
	for _, n := range found {
		for _, m := range n.methods {
			if !slices.Contains(ms, m.method) {
				ms = append(ms, m.method)
			}
		}
	}
	return allowString(ms)
}

// allowString is the Allow header for methods: sorted, with HEAD wherever GET is (Match serves HEAD with
// the GET route).
func allowString(ms []string) string {
	if slices.Contains(ms, "GET") && !slices.Contains(ms, "HEAD") {
		ms = append(ms, "HEAD")
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

// collect appends every node with routes whose template matches rest.
func (n *node) collect(rest []byte, found *[]*node) {
	seg, tail, more := rest, []byte(nil), false
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		seg, tail, more = rest[:i], rest[i+1:], true
	}
	visit := func(c *node) {
		if more {
			c.collect(tail, found)
		} else if c.hasRoutes() {
			*found = append(*found, c)
		}
	}
	if c := n.static(seg); c != nil {
		visit(c)
	}
	if n.param != nil && len(seg) > 0 {
		visit(n.param)
	}
	if c := n.catchAll; c != nil && c.hasRoutes() {
		*found = append(*found, c)
	}
}

// Routes returns the compiled routes in configuration order. The slice must not be modified.
func (t *Table) Routes() []*CompiledRoute { return t.routes }

// Route returns the compiled route with the given name, or nil.
func (t *Table) Route(name string) *CompiledRoute { return t.byName[name] }

// Config returns the configuration the table was compiled from.
func (t *Table) Config() *Config { return t.config }
