// Package egress decides where the credential proxy may connect: it parses
// and normalises hosts and ports from hostile input, matches them against a
// domain allowlist, classifies resolved IP addresses against the IANA
// special-purpose registries, and dials exactly the address it checked.
//
// Everything here is a pure function of its input except Dialer, which
// resolves once through an injected Resolver and dials through an injected
// dial function, so tests control every packet.
package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Errors returned by the parsers. Each maps to a 400 in the proxy.
var (
	ErrBadHost = errors.New("malformed host")
	ErrBadPort = errors.New("malformed port")
)

// Host is a normalised destination host: a lowercase ASCII (punycode) DNS
// name without a trailing dot, or an IP literal. The zero Host is invalid.
type Host struct {
	name string     // normalised DNS name; empty for IP literals
	ip   netip.Addr // valid for IP literals
}

// IsIP reports whether the host was written as an IP literal.
func (h Host) IsIP() bool { return h.ip.IsValid() }

// IP returns the literal address (valid only when IsIP).
func (h Host) IP() netip.Addr { return h.ip }

// Name returns the normalised DNS name ("" for an IP literal).
func (h Host) Name() string { return h.name }

// String returns the host as it belongs in an authority: a name, an IPv4
// literal, or a bracketed IPv6 literal.
func (h Host) String() string {
	if h.ip.IsValid() {
		if h.ip.Is6() {
			return "[" + h.ip.String() + "]"
		}
		return h.ip.String()
	}
	return h.name
}

// idnaProfile maps Unicode names to their ASCII (punycode) lookup form and
// enforces the STD3 rules (letters, digits, hyphen).
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// ParseHost normalises a host as written in an authority (CONNECT target,
// absolute-form URL, allowlist). IPv6 literals must be bracketed; zone
// identifiers, percent-encoding, userinfo, control characters, spaces and
// backslashes are rejected; names are lowercased, lose one trailing dot and
// are converted to their IDNA ASCII form. A name whose last label is numeric
// must be a canonical dotted-quad IPv4 address (no "127.1", "0x7f.1",
// "2130706433"): such forms are IPv4 to some resolvers and names to others.
func ParseHost(s string) (Host, error) {
	if s == "" || len(s) > 255 {
		return Host{}, fmt.Errorf("%w: length %d", ErrBadHost, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c == 0x7f || c == '\\' || c == '%' || c == '@' || c == '/' ||
			c == '?' || c == '#' || c == '"' || c == '<' || c == '>' || c == '`' || c == '|' ||
			c == '{' || c == '}' || c == '^' || c == ',' || c == ';' || c == '\'' {
			return Host{}, fmt.Errorf("%w: forbidden character %q", ErrBadHost, c)
		}
	}
	if s[0] == '[' {
		if s[len(s)-1] != ']' {
			return Host{}, fmt.Errorf("%w: unterminated IPv6 literal", ErrBadHost)
		}
		ip, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return Host{}, fmt.Errorf("%w: bad IPv6 literal", ErrBadHost)
		}
		return Host{ip: ip}, nil
	}
	if strings.ContainsAny(s, "[]:") {
		return Host{}, fmt.Errorf("%w: unbracketed IPv6 literal or stray colon", ErrBadHost)
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" || strings.HasSuffix(name, ".") {
		return Host{}, fmt.Errorf("%w: empty label", ErrBadHost)
	}
	if !utf8.ValidString(name) {
		return Host{}, fmt.Errorf("%w: invalid UTF-8", ErrBadHost)
	}
	ascii, err := idnaProfile.ToASCII(name)
	if err != nil {
		return Host{}, fmt.Errorf("%w: %v", ErrBadHost, err)
	}
	// The ASCII form must itself be valid (its xn-- labels must decode), so
	// that normalising is idempotent.
	if again, err := idnaProfile.ToASCII(ascii); err != nil || again != ascii {
		return Host{}, fmt.Errorf("%w: IDNA form does not round-trip", ErrBadHost)
	}
	ascii = strings.ToLower(ascii)
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return Host{}, fmt.Errorf("%w: bad label length", ErrBadHost)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return Host{}, fmt.Errorf("%w: forbidden character %q", ErrBadHost, c)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return Host{}, fmt.Errorf("%w: label starts or ends with hyphen", ErrBadHost)
		}
	}
	if last := labels[len(labels)-1]; looksNumeric(last) {
		ip, err := netip.ParseAddr(ascii)
		if err != nil || !ip.Is4() {
			return Host{}, fmt.Errorf("%w: numeric name that is not a dotted-quad IPv4 address", ErrBadHost)
		}
		return Host{ip: ip}, nil
	}
	return Host{name: ascii}, nil
}

// looksNumeric reports whether a label is what a WHATWG URL parser or
// inet_aton would read as an IPv4 part: decimal digits or 0x-hex.
func looksNumeric(l string) bool {
	if strings.HasPrefix(l, "0x") {
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// ParsePort parses a decimal port 1–65535 without sign, leading zeros or
// service names ("https").
func ParsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return 0, fmt.Errorf("%w: %q", ErrBadPort, s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q", ErrBadPort, s)
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%w: %q out of range", ErrBadPort, s)
	}
	return uint16(n), nil
}

// ParseAuthority splits and parses "host:port" (CONNECT target) or "host"
// (when defaultPort is non-zero and the port is absent). An empty port after
// a colon is malformed.
func ParseAuthority(s string, defaultPort uint16) (Host, uint16, error) {
	hostPart, portPart, hasPort := splitAuthority(s)
	if !hasPort {
		if defaultPort == 0 {
			return Host{}, 0, fmt.Errorf("%w: missing port", ErrBadPort)
		}
		h, err := ParseHost(hostPart)
		return h, defaultPort, err
	}
	h, err := ParseHost(hostPart)
	if err != nil {
		return Host{}, 0, err
	}
	p, err := ParsePort(portPart)
	if err != nil {
		return Host{}, 0, err
	}
	return h, p, nil
}

// splitAuthority separates a port only after a bracketed literal or from a
// string with a single colon; an unbracketed IPv6 literal is left whole so
// that ParseHost rejects it.
func splitAuthority(s string) (host, port string, ok bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, "", false
		}
		if end == len(s)-1 {
			return s, "", false
		}
		if s[end+1] != ':' {
			return s, "", false // ParseHost rejects the trailing junk
		}
		return s[:end+1], s[end+2:], true
	}
	if strings.Count(s, ":") != 1 {
		return s, "", false
	}
	i := strings.IndexByte(s, ':')
	return s[:i], s[i+1:], true
}
