package router

import (
	"fmt"
	"strings"
)

// segKind orders segments by specificity: a lower kind wins.
type segKind uint8

const (
	segLiteral segKind = iota
	segParam
	segRest
)

type segment struct {
	kind segKind
	text string // the literal, or the parameter's name
}

// pattern is one compiled tag pattern.
type pattern struct {
	src  string
	segs []segment
}

// parsePattern compiles "users.{id}", "files.{path...}", "echo".
func parsePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, fmt.Errorf("router: empty pattern")
	}
	parts := splitPattern(s)
	p := pattern{src: s, segs: make([]segment, len(parts))}
	seen := map[string]bool{}
	for i, part := range parts {
		switch {
		case part == "":
			return pattern{}, fmt.Errorf("router: pattern %q has an empty segment", s)
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "...}"):
			if i != len(parts)-1 {
				return pattern{}, fmt.Errorf("router: pattern %q: %s must be the last segment", s, part)
			}
			p.segs[i] = segment{segRest, part[1 : len(part)-4]}
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			p.segs[i] = segment{segParam, part[1 : len(part)-1]}
		case strings.ContainsAny(part, "{}"):
			return pattern{}, fmt.Errorf("router: pattern %q: bad segment %q", s, part)
		default:
			p.segs[i] = segment{segLiteral, part}
			continue
		}
		name := p.segs[i].text
		if name == "" || strings.ContainsAny(name, "{}.") {
			return pattern{}, fmt.Errorf("router: pattern %q: bad parameter name %q", s, name)
		}
		if seen[name] {
			return pattern{}, fmt.Errorf("router: pattern %q: parameter %q twice", s, name)
		}
		seen[name] = true
	}
	return p, nil
}

// splitPattern splits s at the dots outside braces ("files.{path...}" is two segments).
func splitPattern(s string) []string {
	var parts []string
	start, depth := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '.':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// match reports whether tag matches p, appending the parameters to ps.
func (p *pattern) match(tag string, ps []param) ([]param, bool) {
	rest := tag
	for i, sg := range p.segs {
		if sg.kind == segRest {
			if rest == "" {
				return ps, false
			}
			return append(ps, param{sg.text, rest}), true
		}
		seg, tail, more := strings.Cut(rest, ".")
		if seg == "" || (sg.kind == segLiteral && seg != sg.text) {
			return ps, false
		}
		if sg.kind == segParam {
			ps = append(ps, param{sg.text, seg})
		}
		last := i == len(p.segs)-1
		if last != !more {
			return ps, false
		}
		rest = tail
	}
	return ps, true
}

// moreSpecific reports whether p beats q: the first segment where their kinds differ decides.
func (p *pattern) moreSpecific(q *pattern) bool {
	for i := 0; i < len(p.segs) && i < len(q.segs); i++ {
		if p.segs[i].kind != q.segs[i].kind {
			return p.segs[i].kind < q.segs[i].kind
		}
	}
	return len(p.segs) > len(q.segs)
}

// table holds the patterns of one interaction.
type table[H any] struct {
	exact    map[string]H // patterns without parameters
	patterns []pattern
	handlers []H
}

func (t *table[H]) add(s string, h H) {
	p, err := parsePattern(s)
	if err != nil {
		panic(err)
	}
	for _, q := range t.patterns {
		if q.src == s {
			panic(fmt.Sprintf("router: pattern %q registered twice", s))
		}
	}
	if _, ok := t.exact[s]; ok {
		panic(fmt.Sprintf("router: pattern %q registered twice", s))
	}
	literal := true
	for _, sg := range p.segs {
		literal = literal && sg.kind == segLiteral
	}
	if literal {
		if t.exact == nil {
			t.exact = map[string]H{}
		}
		t.exact[s] = h
		return
	}
	t.patterns = append(t.patterns, p)
	t.handlers = append(t.handlers, h)
}

// lookup finds the most specific handler for tag.
func (t *table[H]) lookup(tag string) (h H, ps []param, ok bool) {
	if h, ok := t.exact[tag]; ok {
		return h, nil, true
	}
	best := -1
	var bestPs []param
	for i := range t.patterns {
		got, m := t.patterns[i].match(tag, nil)
		if !m {
			continue
		}
		if best < 0 || t.patterns[i].moreSpecific(&t.patterns[best]) {
			best, bestPs = i, got
		}
	}
	if best < 0 {
		return h, nil, false
	}
	return t.handlers[best], bestPs, true
}
