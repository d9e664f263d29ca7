package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"lowercase", "API.ALLOWED.EXAMPLE", "api.allowed.example", false},                // B2
		{"trailing dot", "api.allowed.example.", "api.allowed.example", false},            // B1
		{"idna", "bücher.example", "xn--bcher-kva.example", false},                        // principle 2
		{"idna fullwidth dot", "api。allowed。example", "api.allowed.example", false},       // U+3002 maps to '.'
		{"punycode passthrough", "xn--bcher-kva.example", "xn--bcher-kva.example", false}, //
		{"ipv4", "10.0.0.1", "10.0.0.1", false},                                           //
		{"ipv6 bracketed", "[::1]", "[::1]", false},                                       //
		{"ipv6 unbracketed", "::1", "", true},                                             // B9
		{"ipv6 zone", "[fe80::1%eth0]", "", true},                                         //
		{"short ipv4", "127.1", "", true},                                                 // inet_aton forms
		{"hex ipv4", "0x7f.0.0.1", "", true},                                              //
		{"decimal ipv4", "2130706433", "", true},                                          //
		{"octal ipv4", "0177.0.0.1", "", true},                                            //
		{"nul", "a\x00b.example", "", true},                                               // B7
		{"control", "a\x01b.example", "", true},                                           // B7
		{"newline", "a.example\r\nX: y", "", true},                                        // B7
		{"backslash", "a\\b.example", "", true},                                           // B7
		{"space", "a b.example", "", true},                                                // B7
		{"percent", "a%2eb.example", "", true},                                            //
		{"userinfo", "user@a.example", "", true},                                          //
		{"empty", "", "", true},                                                           //
		{"double dot", "a..example", "", true},                                            //
		{"two trailing dots", "a.example..", "", true},                                    //
		{"only dot", ".", "", true},                                                       //
		{"underscore", "a_b.example", "", true},                                           //
		{"leading hyphen", "-a.example", "", true},                                        //
		{"long label", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := ParseHost(tt.in)
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrBadHost) {
					t.Fatalf("ParseHost(%q) = %v, %v; want ErrBadHost", tt.in, h, err)
				}
				return
			}
			if err != nil || h.String() != tt.want {
				t.Fatalf("ParseHost(%q) = %q, %v; want %q", tt.in, h.String(), err, tt.want)
			}
		})
	}
}

func TestParseAuthority(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		def      uint16
		wantHost string
		wantPort uint16
		wantErr  bool
	}{
		{"allowed.example:443", 0, "allowed.example", 443, false},
		{"allowed.example", 0, "", 0, true},
		{"allowed.example", 80, "allowed.example", 80, false},
		{"allowed.example:0", 0, "", 0, true},     // A19
		{"allowed.example:65536", 0, "", 0, true}, // A19
		{"allowed.example:https", 0, "", 0, true}, // A19
		{"allowed.example:+443", 0, "", 0, true},  //
		{"allowed.example:0443", 0, "", 0, true},  //
		{"allowed.example:", 0, "", 0, true},      //
		{"[::1]:443", 0, "[::1]", 443, false},     // B9
		{"::1", 0, "", 0, true},                   // B9
		{"::1:443", 0, "", 0, true},               //
		{"[::1]", 0, "", 0, true},                 //
		{"[::1]x:443", 0, "", 0, true},            //
		{"a:1:2", 0, "", 0, true},                 //
		{"[::ffff:127.0.0.1]:80", 0, "[::ffff:127.0.0.1]", 80, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			h, p, err := ParseAuthority(tt.in, tt.def)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseAuthority(%q) = %v %d; want error", tt.in, h, p)
				}
				return
			}
			if err != nil || h.String() != tt.wantHost || p != tt.wantPort {
				t.Fatalf("ParseAuthority(%q) = %v %d %v; want %s %d", tt.in, h, p, err, tt.wantHost, tt.wantPort)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr   string
		class  Class
		reason string
	}{
		{"127.0.0.1", Forbidden, "loopback"},                                            // A1
		{"::1", Forbidden, "loopback"},                                                  // A1
		{"169.254.169.254", Forbidden, "metadata"},                                      // A2
		{"169.254.170.2", Forbidden, "metadata"},                                        // ECS credentials endpoint
		{"fd00:ec2::254", Forbidden, "metadata"},                                        // A2 v6
		{"168.63.129.16", Forbidden, "metadata"},                                        //
		{"::ffff:169.254.169.254", Forbidden, "embedded_ipv4_metadata"},                 // A4
		{"::ffff:127.0.0.1", Forbidden, "embedded_ipv4_loopback"},                       // A4
		{"::ffff:10.0.0.1", Private, "embedded_ipv4_private"},                           // A4 (denied without allowance)
		{"64:ff9b::7f00:1", Forbidden, "embedded_ipv4_loopback"},                        // NAT64
		{"64:ff9b::a9fe:a9fe", Forbidden, "embedded_ipv4_metadata"},                     //
		{"64:ff9b::5db8:d822", Global, "global"},                                        // NAT64 of a public v4
		{"::7f00:1", Forbidden, "reserved"},                                             // IPv4-compatible
		{"2002:7f00:1::1", Forbidden, "6to4"},                                           //
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", Forbidden, "ietf_protocol_assignment"}, // Teredo
		{"10.0.0.1", Private, "private"},                                                // A8
		{"172.16.0.1", Private, "private"},                                              // A8
		{"192.168.1.1", Private, "private"},                                             // A8
		{"fc00::1", Private, "unique_local"},                                            // A8
		{"100.64.0.1", Private, "shared_address_space"},                                 //
		{"0.0.0.0", Forbidden, "this_network"},                                          //
		{"::", Forbidden, "this_network"},                                               //
		{"fe80::1", Forbidden, "link_local"},                                            //
		{"fec0::1", Forbidden, "reserved"},                                              //
		{"ff02::1", Forbidden, "multicast"},                                             //
		{"224.0.0.1", Forbidden, "multicast"},                                           //
		{"255.255.255.255", Forbidden, "reserved"},                                      //
		{"192.0.2.1", Forbidden, "documentation"},                                       //
		{"2001:db8::1", Forbidden, "documentation"},                                     //
		{"198.18.0.1", Forbidden, "benchmarking"},                                       //
		{"192.0.0.170", Forbidden, "ietf_protocol_assignment"},                          //
		{"100::1", Forbidden, "reserved"},                                               //
		{"93.184.216.34", Global, "global"},                                             //
		{"2606:2800:220:1:248:1893:25c8:1946", Global, "global"},                        //
		{"172.32.0.1", Global, "global"},                                                // just outside 172.16/12
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			got := Classify(netip.MustParseAddr(tt.addr))
			if got.Class != tt.class || got.Reason != tt.reason {
				t.Fatalf("Classify(%s) = %+v; want %v %s", tt.addr, got, tt.class, tt.reason)
			}
		})
	}
	if c := Classify(netip.MustParseAddr("fe80::1%eth0")); c.Class != Forbidden {
		t.Fatalf("zoned address: %+v", c)
	}
}

func TestPatternParse(t *testing.T) {
	t.Parallel()
	bad := []string{"*", "*.", "*example.com", "api.*.example.com", "https://x", "x/path", "x:443", "*.com",
		"*.co.uk", "*.github.io", "com", "10.0.0.1", "[::1]", "", "*.*.example.com", "a b.example"} // B5
	for _, e := range bad {
		if _, err := ParsePattern(e); !errors.Is(err, ErrBadEntry) {
			t.Errorf("ParsePattern(%q) err = %v; want ErrBadEntry", e, err)
		}
	}
	if _, err := ParseAllowlist("allowed.example, *.allowed.example *.com"); err == nil {
		t.Error("ParseAllowlist accepted *.com")
	}
}

func TestAllowlistMatch(t *testing.T) {
	t.Parallel()
	al, err := ParseAllowlist("allowed.example,*.wild.example,API.Upper.Example.")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want bool
	}{
		{"allowed.example", true},
		{"ALLOWED.EXAMPLE", true},               // B2
		{"allowed.example.", true},              // B1
		{"api.upper.example", true},             // entries are normalised too
		{"api.allowed.example", false},          // exact entry has no subdomains
		{"evilallowed.example", false},          // B3
		{"allowed.example.evil.example", false}, // B3
		{"a.wild.example", true},                // wildcard, depth 1
		{"a.b.wild.example", true},              // wildcard, any depth
		{"wild.example", false},                 // apex not included
		{"evilwild.example", false},             // B3: label boundary
		{"wild.example.evil.example", false},    // B3
		{"93.184.216.34", false},                // principle 3
	}
	for _, tt := range tests {
		h, err := ParseHost(tt.host)
		if err != nil {
			t.Fatalf("ParseHost(%q): %v", tt.host, err)
		}
		if _, got := al.Match(h); got != tt.want {
			t.Errorf("Match(%q) = %v; want %v", tt.host, got, tt.want)
		}
	}
}

// fakeResolver answers from a map; alternate flips between two answers on
// each call (DNS rebinding).
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	a, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	n := r.calls[host]
	r.calls[host]++
	return append([]netip.Addr(nil), a[n%len(a)]...), nil
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestDialerPolicy(t *testing.T) {
	t.Parallel()
	res := &fakeResolver{answers: map[string][][]netip.Addr{
		"mixed.example.":   {addrs("93.184.216.34", "10.0.0.5")},         // A12
		"rebind.example.":  {addrs("93.184.216.34"), addrs("127.0.0.1")}, // A13
		"private.example.": {addrs("10.0.0.7")},                          // A17
		"loop.example.":    {addrs("127.0.0.1")},                         // A17
		"public.example.":  {addrs("93.184.216.34")},
	}}
	var dialed []string
	var mu sync.Mutex
	d := &Dialer{Resolver: res, Dial: func(_ context.Context, _, address string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, address)
		mu.Unlock()
		c1, c2 := net.Pipe()
		_ = c2.Close()
		return c1, nil
	}}
	ctx := context.Background()
	mustHost := func(s string) Host {
		h, err := ParseHost(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	if _, err := d.DialContext(ctx, Target{Host: mustHost("mixed.example"), Port: 443}); !errors.Is(err, ErrDenied) {
		t.Errorf("mixed answer: err = %v; want ErrDenied", err)
	}
	for i := 0; i < 4; i++ { // A13: each request resolves once and dials what it checked
		c, err := d.DialContext(ctx, Target{Host: mustHost("rebind.example"), Port: 443})
		if i%2 == 0 {
			if err != nil || c.Addr.String() != "93.184.216.34:443" {
				t.Fatalf("rebind round %d: %v %v", i, c, err)
			}
			_ = c.Close()
		} else if !errors.Is(err, ErrDenied) {
			t.Fatalf("rebind round %d: err = %v; want ErrDenied", i, err)
		}
	}
	if _, err := d.DialContext(ctx, Target{Host: mustHost("private.example"), Port: 443}); !errors.Is(err, ErrDenied) {
		t.Errorf("private without allowance: %v", err)
	}
	c, err := d.DialContext(ctx, Target{Host: mustHost("private.example"), Port: 443, AllowPrivate: true})
	if err != nil {
		t.Errorf("private with allowance: %v", err)
	} else {
		_ = c.Close()
	}
	if _, err := d.DialContext(ctx, Target{Host: mustHost("loop.example"), Port: 443, AllowPrivate: true}); !errors.Is(err, ErrDenied) {
		t.Errorf("loopback with allowance: %v; want denied", err)
	}
	if _, err := d.DialContext(ctx, Target{Host: mustHost("nx.example"), Port: 443}); !errors.Is(err, ErrResolve) {
		t.Errorf("nxdomain: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range dialed {
		if a != "93.184.216.34:443" && a != "10.0.0.7:443" {
			t.Errorf("dialed unchecked address %s", a)
		}
	}
	if len(dialed) != 3 {
		t.Errorf("dialed %v; want 3 dials", dialed)
	}
}

func TestNetDialerControlRefusesForbidden(t *testing.T) {
	t.Parallel()
	var accepted atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	_, err = NetDialer()(context.Background(), "tcp", ln.Addr().String())
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("NetDialer to loopback: err = %v; want ErrDenied", err)
	}
	if accepted.Load() != 0 {
		t.Fatal("loopback listener saw a connection")
	}
}
