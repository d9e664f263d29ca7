package egress

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// ErrBadEntry is returned for an allowlist entry that is malformed or too
// broad (bare "*", a wildcard over a public suffix, a URL, a port, an IP).
var ErrBadEntry = errors.New("invalid allowlist entry")

// Pattern is one allowlist entry: an exact host, or "*.suffix".
//
// Depth rule: "*.example.com" matches every name with at least one more
// label on a label boundary ("a.example.com", "a.b.example.com"), never the
// apex "example.com" itself and never "evilexample.com".
type Pattern struct {
	suffix   string // normalised name; for a wildcard, without the "*."
	wildcard bool
}

// String returns the normalised entry.
func (p Pattern) String() string {
	if p.wildcard {
		return "*." + p.suffix
	}
	return p.suffix
}

// ParsePattern validates and normalises one allowlist entry.
func ParsePattern(entry string) (Pattern, error) {
	e := strings.TrimSpace(entry)
	if e == "" {
		return Pattern{}, fmt.Errorf("%w: empty", ErrBadEntry)
	}
	if strings.Contains(e, "://") || strings.ContainsAny(e, "/:[]@?#") {
		return Pattern{}, fmt.Errorf("%w %q: only a host name or *.domain, no scheme, port or path", ErrBadEntry, entry)
	}
	wildcard := false
	if strings.HasPrefix(e, "*.") {
		wildcard = true
		e = e[2:]
	}
	if strings.Contains(e, "*") {
		return Pattern{}, fmt.Errorf("%w %q: '*' is allowed only as a whole leftmost label", ErrBadEntry, entry)
	}
	h, err := ParseHost(e)
	if err != nil {
		return Pattern{}, fmt.Errorf("%w %q: %v", ErrBadEntry, entry, err)
	}
	if h.IsIP() {
		return Pattern{}, fmt.Errorf("%w %q: IP literals are not allowed; the allowlist names domains", ErrBadEntry, entry)
	}
	if ps, _ := publicsuffix.PublicSuffix(h.Name()); ps == h.Name() {
		return Pattern{}, fmt.Errorf("%w %q: %q is a public suffix", ErrBadEntry, entry, ps)
	}
	return Pattern{suffix: h.Name(), wildcard: wildcard}, nil
}

// Match reports whether a normalised host matches the pattern. An IP
// literal never matches.
func (p Pattern) Match(h Host) bool {
	if h.IsIP() || h.name == "" {
		return false
	}
	if !p.wildcard {
		return h.name == p.suffix
	}
	return len(h.name) > len(p.suffix)+1 &&
		strings.HasSuffix(h.name, p.suffix) &&
		h.name[len(h.name)-len(p.suffix)-1] == '.'
}

// Allowlist is an immutable set of patterns. The zero value allows nothing.
type Allowlist struct {
	patterns []Pattern
}

// ParseAllowlist parses comma- or whitespace-separated entries; any bad
// entry fails the whole list (fail closed at startup).
func ParseAllowlist(s string) (Allowlist, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
	return NewAllowlist(fields)
}

// NewAllowlist builds an Allowlist from entries.
func NewAllowlist(entries []string) (Allowlist, error) {
	var a Allowlist
	for _, e := range entries {
		p, err := ParsePattern(e)
		if err != nil {
			return Allowlist{}, err
		}
		a.patterns = append(a.patterns, p)
	}
	return a, nil
}

// Match returns the first pattern matching h.
func (a Allowlist) Match(h Host) (Pattern, bool) {
	for _, p := range a.patterns {
		if p.Match(h) {
			return p, true
		}
	}
	return Pattern{}, false
}

// Len returns the number of entries.
func (a Allowlist) Len() int { return len(a.patterns) }
