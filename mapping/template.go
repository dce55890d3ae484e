package mapping

import (
	"errors"
	"strconv"
	"strings"
)

// segKind is the kind of one path template segment.
type segKind uint8

const (
	segStatic   segKind = iota // literal text, matched exactly
	segParam                   // "{name}": one non-empty segment
	segCatchAll                // "{name...}": the rest of the path, possibly empty; last segment only
)

// pathSegment is one "/"-separated piece of a path template.
type pathSegment struct {
	kind segKind
	text string // literal for segStatic, parameter name otherwise
}

// PathTemplate is a parsed path template such as "/api/users/{id}", "/api/users/{id:[0-9]+}" or
// "/files/{rest...}".
type PathTemplate struct {
	raw    string
	segs   []pathSegment
	params []string     // parameter names in path order
	checks []paramCheck // parallel to params: how each value is validated (params.go)
}

// String returns the template as written.
func (t *PathTemplate) String() string { return t.raw }

// Params returns the parameter names in path order. The slice must not be modified.
func (t *PathTemplate) Params() []string { return t.params }

// shape returns the template with parameter names erased ("/a/{}/{...}"): two templates with the same
// shape match exactly the same paths.
func (t *PathTemplate) shape() string {
	var b strings.Builder
	for _, s := range t.segs {
		b.WriteByte('/')
		switch s.kind {
		case segStatic:
			b.WriteString(s.text)
		case segParam:
			b.WriteString("{}")
		case segCatchAll:
			b.WriteString("{...}")
		}
	}
	return b.String()
}

// ParsePathTemplate parses a route path template. Rules: it starts with "/"; segments are separated by
// "/"; a segment is literal text, "{name}", "{name:PATTERN}" (RE2, no '/'), "{name:any}" or, as the last
// segment only, "{name...}"; a name is [A-Za-z_][A-Za-z0-9_]*, unique in the template; at most MaxParams
// parameters; empty segments only as the final segment (a trailing slash, or the root "/"); no '?', '#',
// spaces or control characters. See params.go for what each parameter form accepts.
func ParsePathTemplate(s string) (*PathTemplate, error) {
	if s == "" {
		return nil, errors.New("empty path")
	}
	if s[0] != '/' {
		return nil, errors.New("path " + strconv.Quote(s) + " must start with \"/\"")
	}
	t := &PathTemplate{raw: s}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		last := i == len(parts)-1
		if p == "" {
			if !last {
				return nil, errors.New("path " + strconv.Quote(s) + " has an empty segment (\"//\")")
			}
			t.segs = append(t.segs, pathSegment{kind: segStatic})
			continue
		}
		if !strings.ContainsAny(p, "{}") {
			for j := 0; j < len(p); j++ {
				if c := p[j]; c <= ' ' || c == 0x7f || c == '?' || c == '#' {
					return nil, errors.New("path " + strconv.Quote(s) + " contains " + strconv.QuoteRune(rune(c)) +
						" (query strings, fragments, spaces and control characters cannot be matched)")
				}
			}
			t.segs = append(t.segs, pathSegment{kind: segStatic, text: p})
			continue
		}
		bracketed := len(p) >= 2 && p[0] == '{' && p[len(p)-1] == '}'
		inner := ""
		if bracketed {
			inner = p[1 : len(p)-1]
		}
		head, _, hasPat := strings.Cut(inner, ":")
		if !bracketed || strings.ContainsAny(head, "{}") || !hasPat && strings.ContainsAny(inner, "{}") {
			if !bracketed && p[0] == '{' && strings.Contains(p, ":") {
				return nil, errors.New("path " + strconv.Quote(s) + ": segment " + strconv.Quote(p) +
					" is not a whole parameter (a parameter pattern cannot contain \"/\")")
			}
			return nil, errors.New("path " + strconv.Quote(s) + ": segment " + strconv.Quote(p) +
				" mixes text and braces (a parameter must be a whole segment: \"{name}\")")
		}
		name := inner
		kind := segParam
		if n, ok := strings.CutSuffix(name, "..."); ok && !hasPat {
			if !last {
				return nil, errors.New("path " + strconv.Quote(s) + ": catch-all " + strconv.Quote(p) +
					" must be the last segment")
			}
			name, kind = n, segCatchAll
		}
		name, check, err := parseParamSpec(name, kind == segCatchAll)
		if err != nil {
			return nil, errors.New("path " + strconv.Quote(s) + ": " + err.Error())
		}
		if !validParamName(name) {
			return nil, errors.New("path " + strconv.Quote(s) + ": invalid parameter name " + strconv.Quote(name) +
				" (letters, digits and '_', not starting with a digit)")
		}
		for _, q := range t.params {
			if q == name {
				return nil, errors.New("path " + strconv.Quote(s) + ": duplicate parameter " + strconv.Quote(name))
			}
		}
		if len(t.params) == MaxParams {
			return nil, errors.New("path " + strconv.Quote(s) + ": more than " + strconv.Itoa(MaxParams) + " parameters")
		}
		t.params = append(t.params, name)
		t.checks = append(t.checks, check)
		t.segs = append(t.segs, pathSegment{kind: kind, text: name})
	}
	return t, nil
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// tplPart is a literal or a parameter reference of a Template.
type tplPart struct {
	lit   string
	param int // index into the path's parameters; -1 for a literal
}

// Template is a compiled text template over path parameters: a routing tag ("users.{id}") or an upstream
// path ("/v1/users/{id}"). Expansion appends to a caller buffer and does not allocate.
type Template struct {
	raw   string
	parts []tplPart
}

// ParseTemplate compiles s, resolving each "{name}" against params (the path template's parameter names,
// in path order). "{" and "}" are reserved: they cannot appear outside a reference. A reference may also
// be written "{name...}" for a catch-all parameter.
func ParseTemplate(s string, params []string) (Template, error) {
	t := Template{raw: s}
	rest := s
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, tplPart{lit: rest, param: -1})
			break
		}
		if rest[open] == '}' {
			return Template{}, errors.New("template " + strconv.Quote(s) + ": unmatched \"}\"")
		}
		if open > 0 {
			t.parts = append(t.parts, tplPart{lit: rest[:open], param: -1})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return Template{}, errors.New("template " + strconv.Quote(s) + ": unterminated \"{\"")
		}
		name := rest[open+1 : open+1+end]
		name = strings.TrimSuffix(name, "...")
		idx := -1
		for i, p := range params {
			if p == name {
				idx = i
				break
			}
		}
		if idx < 0 {
			msg := "template " + strconv.Quote(s) + ": unknown parameter " + strconv.Quote(name)
			if len(params) == 0 {
				msg += " (the path has no parameters)"
			} else {
				msg += " (the path has " + strings.Join(params, ", ") + ")"
			}
			return Template{}, errors.New(msg)
		}
		t.parts = append(t.parts, tplPart{param: idx})
		rest = rest[open+1+end+1:]
	}
	return t, nil
}

// String returns the template as written.
func (t Template) String() string { return t.raw }

// IsZero reports whether the template is empty (expands to nothing).
func (t Template) IsZero() bool { return len(t.parts) == 0 }

// IsStatic reports whether the template has no parameter references.
func (t Template) IsStatic() bool {
	for _, p := range t.parts {
		if p.param >= 0 {
			return false
		}
	}
	return true
}

// Append appends the expansion of t with the values in ps to dst. A reference to a parameter that ps
// does not hold expands to nothing.
func (t Template) Append(dst []byte, ps *Params) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		if p.param < 0 {
			dst = append(dst, p.lit...)
		} else if p.param < ps.n {
			dst = append(dst, ps.vals[p.param]...)
		}
	}
	return dst
}

// literalLen is the number of bytes the template contributes besides parameter values.
func (t Template) literalLen() int {
	n := 0
	for _, p := range t.parts {
		n += len(p.lit)
	}
	return n
}
