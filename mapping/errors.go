package mapping

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one problem found in a configuration: where it is and what is wrong.
type FieldError struct {
	File  string // file name as given to Parse/Load ("" for configs built in Go)
	Line  int    // 1-based line in File; 0 when unknown
	Field string // dotted path of the field, e.g. "routes[2].timeout"; "" for file-level problems
	Msg   string // what is wrong, e.g. `invalid duration "5x"`
}

// Error formats the problem as "file:line: field: message", leaving out the parts that are unknown.
func (e FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigError collects every problem found in one configuration, in line order.
// Match it with errors.As(err, new(*ConfigError)).
type ConfigError struct {
	Errors []FieldError
}

// Error returns one problem per line.
func (e *ConfigError) Error() string {
	switch len(e.Errors) {
	case 0:
		return "invalid configuration"
	case 1:
		return e.Errors[0].Error()
	}
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// errorList accumulates FieldErrors for one file.
type errorList struct {
	file string
	errs []FieldError
}

func (l *errorList) add(line int, field, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	l.errs = append(l.errs, FieldError{File: l.file, Line: line, Field: field, Msg: msg})
}

// err returns nil or a *ConfigError sorted by line (stable: same-line errors keep discovery order).
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := slices.Clone(l.errs)
	slices.SortStableFunc(errs, func(a, b FieldError) int { return cmp.Compare(a.Line, b.Line) })
	return &ConfigError{Errors: errs}
}

// suggest returns the candidate closest to key when it is close enough to be a likely typo.
func suggest(key string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(key), c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= 2 && bestD*3 <= len(key)+1 {
		return best
	}
	// A key written without its prefix, or misspelled too: "tiemout" for a backend's "dial_timeout".
	best, bestD = "", 1<<30
	for _, c := range candidates {
		i := strings.LastIndexByte(c, '_')
		if i < 0 {
			continue
		}
		if d := editDistance(strings.ToLower(key), c[i+1:]); d < bestD {
			best, bestD = c, d
		}
	}
	if len(key) >= 4 && bestD <= 2 && bestD*3 <= len(key)+1 {
		return best
	}
	return ""
}

// editDistance is the optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	var rows [3][65]int
	prev2, prev, cur := &rows[0], &rows[1], &rows[2]
	for j := 0; j <= len(b); j++ {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
