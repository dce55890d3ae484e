package mapping

import (
	"strconv"
	"strings"
)

// indentProblem is the first line of a YAML file whose indentation cannot be right, found by a scan of
// the block structure. yaml.v3 reports an indentation mistake where the enclosing block starts ("line 5:
// did not find expected '-' indicator" for a key under routes[0] written one space short), without a
// field; this scan finds the line itself and names the field it would have been.
type indentProblem struct {
	line  int    // 1-based
	field string // "routes[0].interaction"; "" when the line has no key
	msg   string
}

// indentFrame is one open block: the indentation its entries use and the field path they extend.
type indentFrame struct {
	indent int
	path   string
	seqIdx int // next sequence index, for "- " entries at this indentation
	line   int // the line that set the indentation
}

// findIndentProblem scans data line by line. It understands block mappings ("key:" and "key: value"),
// block sequences ("- ", "- key: value"), comments, blank lines, block scalars ("key: |") and documents
// markers; flow collections spanning lines end the scan (it reports nothing rather than a wrong line). It
// returns false when every line fits.
func findIndentProblem(data []byte) (indentProblem, bool) {
	lines := strings.Split(string(data), "\n")
	stack := []indentFrame{{indent: 0}}
	opens := false               // the previous line opened a block: a deeper line starts it
	openPath := ""               // the path of the block it opened
	scalarIndent := -1           // inside a block scalar: lines indented more than this are text
	prevLine, prevIndent := 0, 0 // the last line with content
	for i, raw := range lines {
		lineNo := i + 1
		line := strings.TrimRight(raw, " \r")
		content := strings.TrimLeft(line, " ")
		indent := len(line) - len(content)
		if scalarIndent >= 0 {
			if content == "" || indent > scalarIndent {
				continue
			}
			scalarIndent = -1
		}
		if content == "" || content[0] == '#' || content == "---" || content == "..." || strings.HasPrefix(content, "%") {
			continue
		}
		if content[0] == '\t' {
			return indentProblem{line: lineNo, msg: "a tab in the indentation (YAML indents with spaces only)"}, true
		}
		top := &stack[len(stack)-1]
		aboveLine, aboveIndent := prevLine, prevIndent
		prevLine, prevIndent = lineNo, indent
		switch {
		case indent > top.indent && opens:
			stack = append(stack, indentFrame{indent: indent, path: openPath, line: lineNo})
		case indent > top.indent:
			return indentProblem{line: lineNo, field: fieldOf(top.path, content),
				msg: "invalid YAML: indented " + strconv.Itoa(indent) + " spaces, more than line " + strconv.Itoa(aboveLine) +
					" above it (" + strconv.Itoa(aboveIndent) + "), which does not open a block"}, true
		default:
			inner := *top
			for len(stack) > 1 && indent < stack[len(stack)-1].indent {
				inner = stack[len(stack)-1]
				stack = stack[:len(stack)-1]
			}
			if top = &stack[len(stack)-1]; indent != top.indent {
				// Between two levels: most likely meant as an entry of the inner block, like the line above.
				return indentProblem{line: lineNo, field: fieldOf(inner.path, content),
					msg: "invalid YAML: indented " + strconv.Itoa(indent) + " spaces, which matches no enclosing block (line " +
						strconv.Itoa(aboveLine) + " above uses " + strconv.Itoa(inner.indent) + ", its parent " + strconv.Itoa(top.indent) + ")"}, true
			}
			if top.line == 0 {
				top.line = lineNo
			}
		}
		top = &stack[len(stack)-1]
		opens, openPath = false, ""
		path := top.path
		// Sequence entries: "- value", "- key: value", "-" alone (the entry is the block below).
		for content == "-" || strings.HasPrefix(content, "- ") {
			path += "[" + strconv.Itoa(top.seqIdx) + "]"
			top.seqIdx++
			rest := strings.TrimLeft(content[1:], " ")
			if rest == "" || rest[0] == '#' {
				opens, openPath = true, path
				break
			}
			indent += len(content) - len(rest)
			stack = append(stack, indentFrame{indent: indent, path: path, line: lineNo})
			top = &stack[len(stack)-1]
			content = rest
		}
		if opens {
			continue
		}
		key, value, isKey := splitKey(content)
		if !isKey {
			continue // a plain scalar entry
		}
		field := joinField(path, key)
		switch {
		case value == "" || value[0] == '#' || value[0] == '&':
			opens, openPath = true, field
		case value[0] == '|' || value[0] == '>':
			scalarIndent = indent
		case (value[0] == '[' || value[0] == '{') && !flowClosed(value):
			return indentProblem{}, false // a flow collection over several lines: out of this scan's reach
		}
	}
	return indentProblem{}, false
}

// splitKey splits "key: value" (value may be empty). Quoted keys are unquoted; a line without ": " (or a
// final ':') is not a key.
func splitKey(s string) (key, value string, ok bool) {
	if s[0] == '"' || s[0] == '\'' {
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return "", "", false
		}
		key, rest := s[1:1+end], s[2+end:]
		if rest == ":" {
			return key, "", true
		}
		if strings.HasPrefix(rest, ": ") {
			return key, strings.TrimSpace(rest[2:]), true
		}
		return "", "", false
	}
	if s[0] == '[' || s[0] == '{' {
		return "", "", false
	}
	if strings.HasSuffix(s, ":") && !strings.Contains(s, ": ") {
		return s[:len(s)-1], "", true
	}
	i := strings.Index(s, ": ")
	if i < 0 {
		return "", "", false
	}
	return s[:i], strings.TrimSpace(s[i+2:]), true
}

// flowClosed reports whether a flow collection opened at the start of s closes on the same line (quotes
// and comments are not interpreted: a line that only looks open ends the scan, which is the safe side).
func flowClosed(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		}
	}
	return depth <= 0
}

func fieldOf(path, content string) string {
	c := strings.TrimLeft(strings.TrimPrefix(content, "-"), " ")
	if c == "" {
		return path
	}
	if key, _, ok := splitKey(c); ok {
		return joinField(path, key)
	}
	return path
}

func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
