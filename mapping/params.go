package mapping

import (
	"errors"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path parameter validation. A parameter value goes into routing tags ("users.{id}") and upstream paths,
// so it is checked after the route matched and before anything is built from it; a value that fails
// gets 400 BAD_PARAMETER (not 404: patterns do not take part in matching, so two routes that differ only
// by a parameter's pattern conflict, as two routes with the same shape always did).
//
// The value checked is what the table matched: the request path after the HTTP server's percent-decoding
// and normalisation (fasthttp decodes %XX, so "%2e" is a '.', "%00" a NUL byte and "%ff" an invalid
// UTF-8 byte by the time the check runs). The rules:
//
//   - "{name}" (default): 1 to 256 bytes of [A-Za-z0-9_~-]. No '.', so a value cannot add tag segments
//     ("42.admin"); no '/', control bytes, spaces or non-ASCII bytes. A byte-class check, no allocation.
//   - "{name:RE2}": the whole value matches the regular expression (anchored: "^(?:RE2)$"), compiled once
//     when the table is built; in addition it is valid UTF-8 without control bytes (C0 and DEL), at most
//     1024 bytes. The pattern cannot contain '/' (a parameter is one path segment).
//   - "{name:any}": any non-empty segment (the behaviour before validation existed).
//   - "{name...}" (catch-all): valid UTF-8 without control bytes (it may contain '/' and '.', and be
//     empty), at most 4096 bytes.

// Limits of the parameter checks.
const (
	MaxParamLen         = 256  // default check: longest value, in bytes
	MaxPatternParamLen  = 1024 // pattern check: longest value, in bytes
	MaxCatchAllParamLen = 4096 // catch-all: longest value, in bytes
)

// ParamTypeAny is the parameter type that turns validation off: "{name:any}".
const ParamTypeAny = "any"

// paramKind says how one parameter is validated.
type paramKind uint8

const (
	paramDefault  paramKind = iota // [A-Za-z0-9_~-]{1,256}
	paramPattern                   // a compiled RE2 pattern
	paramAny                       // anything non-empty
	paramCatchAll                  // "{name...}"
)

// paramCheck validates one parameter value. Immutable after compilation.
type paramCheck struct {
	kind    paramKind
	pattern string         // as written, for messages
	re      *regexp.Regexp // paramPattern only
}

// defaultParamByte marks the bytes a default parameter may hold: [A-Za-z0-9_~-].
var defaultParamByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	t['_'], t['~'], t['-'] = true, true, true
	return t
}()

// ValidDefaultParam reports whether v passes the default parameter check: 1 to MaxParamLen bytes of
// [A-Za-z0-9_~-]. It does not allocate.
func ValidDefaultParam(v []byte) bool {
	if len(v) == 0 || len(v) > MaxParamLen {
		return false
	}
	for _, c := range v {
		if !defaultParamByte[c] {
			return false
		}
	}
	return true
}

// validText reports whether v is valid UTF-8 without C0 control bytes or DEL.
func validText(v []byte) bool {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}

// valid applies the check to one value.
func (c *paramCheck) valid(v []byte) bool {
	switch c.kind {
	case paramDefault:
		return ValidDefaultParam(v)
	case paramAny:
		return len(v) > 0
	case paramCatchAll:
		return len(v) <= MaxCatchAllParamLen && validText(v)
	case paramPattern:
		return len(v) > 0 && len(v) <= MaxPatternParamLen && validText(v) && c.re.Match(v)
	}
	return false
}

// describe says what the check wants, for the 400 answer.
func (c *paramCheck) describe() string {
	switch c.kind {
	case paramDefault:
		return "1 to 256 characters of A-Z a-z 0-9 _ ~ -"
	case paramAny:
		return "a non-empty value"
	case paramCatchAll:
		return "valid UTF-8 without control characters"
	case paramPattern:
		return "a value matching " + c.pattern
	}
	return ""
}

// parseParamSpec splits the inside of "{...}" into a name and its check: "id", "id:[0-9]+", "id:any",
// "rest...".
func parseParamSpec(spec string, catchAll bool) (string, paramCheck, error) {
	if catchAll {
		return spec, paramCheck{kind: paramCatchAll}, nil
	}
	name, pat, hasPat := strings.Cut(spec, ":")
	if !hasPat {
		return name, paramCheck{kind: paramDefault}, nil
	}
	switch {
	case pat == "":
		return name, paramCheck{}, errors.New("empty pattern after \":\" (write {" + name + "} for the default check, {" + name + ":any} for none)")
	case pat == ParamTypeAny:
		return name, paramCheck{kind: paramAny}, nil
	}
	_, err := regexp.Compile(pat) // first alone: errors then quote the pattern as written
	var re *regexp.Regexp
	if err == nil {
		re, err = regexp.Compile("^(?:" + pat + ")$")
	}
	if err != nil {
		var se *syntax.Error
		msg := err.Error()
		if errors.As(err, &se) {
			msg = string(se.Code) + ": " + strconv.Quote(se.Expr)
		}
		return name, paramCheck{}, errors.New("invalid pattern " + strconv.Quote(pat) + " for parameter " + strconv.Quote(name) + ": " + msg)
	}
	return name, paramCheck{kind: paramPattern, pattern: pat, re: re}, nil
}

// BadParamError describes a path parameter that failed its check.
type BadParamError struct {
	Name string // the parameter's name
	Want string // what the check wants
}

func (e *BadParamError) Error() string {
	return "invalid path parameter " + strconv.Quote(e.Name) + " (want " + e.Want + ")"
}

// CheckParams validates the parameters of a match of this route (ps from Table.Match). It returns -1
// when every value passes, else the index of the first that fails. It does not allocate for default,
// any and catch-all parameters; a pattern parameter runs its compiled regexp.
func (r *CompiledRoute) CheckParams(ps *Params) int {
	checks := r.path.checks
	for i := 0; i < ps.n && i < len(checks); i++ {
		if !checks[i].valid(ps.vals[i]) {
			return i
		}
	}
	return -1
}

// ParamError returns the error for parameter i of the route (an index CheckParams returned).
func (r *CompiledRoute) ParamError(i int) *BadParamError {
	return &BadParamError{Name: r.path.params[i], Want: r.path.checks[i].describe()}
}
