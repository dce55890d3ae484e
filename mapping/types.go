package mapping

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in YAML as a Go duration string ("250ms", "5s", "1m30s").
// The bare integer 0 is accepted and means zero; other bare numbers are rejected because their unit is
// ambiguous.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d as a duration string, so a marshalled Config parses back to the same values.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// parseDuration parses a Duration in the accepted YAML forms. tag is the node's resolved short tag.
func parseDuration(s, tag string) (Duration, error) {
	if tag == "!!int" {
		if n, err := strconv.ParseInt(s, 0, 64); err == nil && n == 0 {
			return 0, nil
		}
		return 0, errors.New("invalid duration " + strconv.Quote(s) + " (missing unit, e.g. \"" + s + "s\")")
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("invalid duration " + strconv.Quote(s))
	}
	if d < 0 {
		return 0, errors.New("negative duration " + strconv.Quote(s))
	}
	return Duration(d), nil
}

// Byte size units accepted by parseSize: decimal (kB = 1000) and binary (KiB = 1024). Case-insensitive.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// parseSize parses a byte count: an integer (bytes) or a string such as "4MiB", "512 KiB", "1.5MB", "64k".
// Single-letter units (k, m, g) are binary. The result must be >= 0 and fit in an int.
func parseSize(s string) (int, error) {
	bad := errors.New("invalid size " + strconv.Quote(s) + " (use bytes or a unit: B, KiB, MiB, GiB, kB, MB, GB)")
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, bad
	}
	n, err := strconv.ParseInt(t, 0, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, errors.New("size " + strconv.Quote(s) + " too large")
	}
	if err == nil {
		if n < 0 {
			return 0, errors.New("negative size " + strconv.Quote(s))
		}
		if n > math.MaxInt {
			return 0, errors.New("size " + strconv.Quote(s) + " too large")
		}
		return int(n), nil
	}
	lower := strings.ToLower(t)
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(lower, u.name)
		if !ok {
			continue
		}
		num = strings.TrimSpace(num)
		if num == "" || num[0] == '+' {
			return 0, bad
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(num, "xXpP_") {
			return 0, bad
		}
		if f < 0 {
			return 0, errors.New("negative size " + strconv.Quote(s))
		}
		v := f * float64(u.mult)
		if v >= math.MaxInt64/2 {
			return 0, errors.New("size " + strconv.Quote(s) + " too large")
		}
		if v != math.Trunc(v) {
			return 0, errors.New("size " + strconv.Quote(s) + " is not a whole number of bytes")
		}
		return int(v), nil
	}
	return 0, bad
}
