package egress

import (
	"net/netip"
)

// Class is what the egress policy thinks of a resolved address.
type Class int

const (
	// Global: globally reachable unicast; may be dialed.
	Global Class = iota
	// Private: RFC 1918, shared address space (RFC 6598) or unique local
	// IPv6. Dialed only for a host with an explicit private allowance.
	Private
	// Forbidden: loopback, link-local, cloud metadata, multicast,
	// documentation, reserved, unspecified, and every other special-purpose
	// block. Never dialed, whatever the configuration says.
	Forbidden
)

// Classification is the verdict on one address, with the registry entry
// that decided it (used as the audit reason).
type Classification struct {
	Class  Class
	Reason string
}

type block struct {
	prefix netip.Prefix
	class  Class
	reason string
}

func mustBlocks(entries ...any) []block {
	var out []block
	for i := 0; i < len(entries); i += 3 {
		out = append(out, block{
			prefix: netip.MustParsePrefix(entries[i].(string)),
			class:  entries[i+1].(Class),
			reason: entries[i+2].(string),
		})
	}
	return out
}

// metadata lists cloud instance-metadata and platform endpoints. Most sit in
// blocks denied anyway; listing them gives a precise audit reason, and some
// (Azure's wire server) are otherwise global.
var metadata = mustBlocks(
	"169.254.169.254/32", Forbidden, "metadata",
	"169.254.170.2/32", Forbidden, "metadata", // ECS task metadata / credentials
	"169.254.170.23/32", Forbidden, "metadata", // EKS pod identity
	"168.63.129.16/32", Forbidden, "metadata", // Azure wire server
	"100.100.100.200/32", Forbidden, "metadata", // Alibaba Cloud
	"192.0.0.192/32", Forbidden, "metadata", // Oracle Cloud
	"fd00:ec2::254/128", Forbidden, "metadata", // AWS IMDS over IPv6
	"fd00:ec2::23/128", Forbidden, "metadata",
)

// IPv4 special-purpose address registry (IANA, RFC 6890 and updates).
// Blocks whose "globally reachable" is true (AS112, AMT) are not listed.
var special4 = mustBlocks(
	"0.0.0.0/8", Forbidden, "this_network",
	"10.0.0.0/8", Private, "private",
	"100.64.0.0/10", Private, "shared_address_space",
	"127.0.0.0/8", Forbidden, "loopback",
	"169.254.0.0/16", Forbidden, "link_local",
	"172.16.0.0/12", Private, "private",
	"192.0.0.0/24", Forbidden, "ietf_protocol_assignment",
	"192.0.2.0/24", Forbidden, "documentation",
	"192.88.99.0/24", Forbidden, "6to4_relay",
	"192.168.0.0/16", Private, "private",
	"198.18.0.0/15", Forbidden, "benchmarking",
	"198.51.100.0/24", Forbidden, "documentation",
	"203.0.113.0/24", Forbidden, "documentation",
	"224.0.0.0/4", Forbidden, "multicast",
	"240.0.0.0/4", Forbidden, "reserved", // includes 255.255.255.255
)

// IPv6 special-purpose address registry. Everything outside 2000::/3
// (global unicast) is forbidden before this list is consulted, except the
// forms that embed an IPv4 address, which are judged by that address.
var special6 = mustBlocks(
	"2001::/23", Forbidden, "ietf_protocol_assignment", // includes Teredo 2001::/32, ORCHIDv2, benchmarking
	"2001:db8::/32", Forbidden, "documentation",
	"2002::/16", Forbidden, "6to4", // deprecated; embeds IPv4, denied outright
	"3fff::/20", Forbidden, "documentation",
)

var (
	mapped4 = netip.MustParsePrefix("::ffff:0:0/96")
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	global6 = netip.MustParsePrefix("2000::/3")
	ula6    = netip.MustParsePrefix("fc00::/7")
	ll6     = netip.MustParsePrefix("fe80::/10")
)

// Classify judges an address by the IANA special-purpose registries. Go's
// net.IP.IsPrivate and IsGlobalUnicast are not used: they miss shared
// address space, documentation, benchmarking, 6to4, NAT64 and more.
// Addresses with a zone are forbidden.
func Classify(a netip.Addr) Classification {
	if !a.IsValid() || a.Zone() != "" {
		return Classification{Forbidden, "invalid"}
	}
	for _, b := range metadata {
		if b.prefix.Contains(a) {
			return Classification{b.class, b.reason}
		}
	}
	if a.Is4In6() || mapped4.Contains(a) {
		return classifyEmbedded(a.Unmap())
	}
	if nat64.Contains(a) {
		b := a.As16()
		return classifyEmbedded(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	if a.Is4() {
		for _, b := range special4 {
			if b.prefix.Contains(a) {
				return Classification{b.class, b.reason}
			}
		}
		return Classification{Global, "global"}
	}
	switch {
	case a == netip.IPv6Loopback():
		return Classification{Forbidden, "loopback"}
	case a == netip.IPv6Unspecified():
		return Classification{Forbidden, "this_network"}
	case ll6.Contains(a):
		return Classification{Forbidden, "link_local"}
	case ula6.Contains(a):
		return Classification{Private, "unique_local"}
	case a.IsMulticast():
		return Classification{Forbidden, "multicast"}
	case !global6.Contains(a):
		// ::/96 IPv4-compatible, 64:ff9b:1::/48, 100::/64 discard,
		// 5f00::/16 SRv6, fec0::/10 site-local and unassigned space.
		return Classification{Forbidden, "reserved"}
	}
	for _, b := range special6 {
		if b.prefix.Contains(a) {
			return Classification{b.class, b.reason}
		}
	}
	// ISATAP interface identifiers (::0:5efe:a.b.c.d, ::200:5efe:a.b.c.d)
	// embed an IPv4 address; a relay could deliver to it, so judge it.
	if b := a.As16(); (b[8]|0x02) == 0x02 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		if c := classifyEmbedded(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); c.Class != Global {
			return c
		}
	}
	return Classification{Global, "global"}
}

// classifyEmbedded judges an IPv6 form by the IPv4 address it embeds, with a
// reason that says so.
func classifyEmbedded(v4 netip.Addr) Classification {
	c := Classify(v4)
	if c.Class != Global {
		c.Reason = "embedded_ipv4_" + c.Reason
	}
	return c
}
