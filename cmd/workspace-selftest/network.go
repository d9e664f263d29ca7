package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/workspaced/workspaced/selftest"
)

// networkChecks: only the interfaces the runtime gives, no metadata
// service, no direct egress, the proxy's allowlist enforced, DNS filtered
// where a DNS firewall is expected.
func networkChecks(ctx context.Context, cfg config, env runtimeEnv) []selftest.Check {
	proxyUp := dialOK(ctx, "tcp", cfg.proxyAddr, cfg.dialTimeout) == nil
	checks := []selftest.Check{interfacesCheck(env)}
	checks = append(checks,
		imdsCheck(ctx, cfg, "network.imds_v4", "169.254.169.254:80", proxyUp),
		imdsCheck(ctx, cfg, "network.imds_v6", "[fd00:ec2::254]:80", proxyUp),
	)
	err := dialOK(ctx, "tcp", cfg.egressProbe, cfg.dialTimeout)
	checks = append(checks, check("network.direct_egress", "a direct connection to "+cfg.egressProbe+" fails", dialObs(err), err != nil,
		"commands in the workspace reach the internet without the proxy: nothing filters or audits their egress"))
	checks = append(checks, proxyChecks(ctx, cfg, proxyUp)...)
	return append(checks, dnsCheck(ctx, cfg, env))
}

func dialOK(ctx context.Context, network, addr string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		c.Close()
	}
	return err
}

func dialObs(err error) string {
	if err == nil {
		return "CONNECTED"
	}
	return "failed: " + shortErr(err)
}

// interfacesCheck: Docker workspaces have only loopback; an ECS task has
// loopback and its one task ENI.
func interfacesCheck(env runtimeEnv) selftest.Check {
	ifs, err := net.Interfaces()
	var names []string
	nonLoop := 0
	for _, i := range ifs {
		names = append(names, i.Name)
		if i.Flags&net.FlagLoopback == 0 {
			nonLoop++
		}
	}
	obs := strings.Join(names, ", ")
	if err != nil {
		obs = err.Error()
	}
	switch env.runtime {
	case selftest.RuntimeDocker:
		return check("network.interfaces", "only the loopback interface (NetworkMode none)", obs, err == nil && nonLoop == 0,
			"the workspace is attached to a network: isolation rests on filtering instead of having no route at all")
	case selftest.RuntimeECS:
		return check("network.interfaces", "loopback and the task's one ENI (awsvpc)", obs, err == nil && nonLoop == 1,
			"the task has more network interfaces than its ENI")
	}
	return notApplicable("network.interfaces", "the runtime's interfaces", "unknown runtime; interfaces: "+obs)
}

// imdsCheck: the instance metadata service is unreachable directly and
// through the proxy.
func imdsCheck(ctx context.Context, cfg config, id, addr string, proxyUp bool) selftest.Check {
	direct := dialOK(ctx, "tcp", addr, cfg.dialTimeout)
	obs := "direct: " + dialObs(direct)
	ok := direct != nil
	if proxyUp {
		host, _, _ := net.SplitHostPort(addr)
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		status, err := proxyGet(ctx, cfg, "http://"+host+"/latest/meta-data/")
		if err != nil {
			obs += "; through the proxy: " + shortErr(err)
		} else {
			obs += "; through the proxy: " + status
			ok = ok && !strings.HasPrefix(status, "2")
		}
	} else {
		obs += "; no proxy listening on " + cfg.proxyAddr
	}
	return check(id, "no connection to "+addr+", directly or through the proxy", obs, ok,
		"the instance metadata service is reachable: the instance role's credentials are exposed")
}

// proxyGet sends an absolute-form GET through the proxy and returns the
// status line's code and text.
func proxyGet(ctx context.Context, cfg config, url string) (string, error) {
	host := strings.SplitN(url, "/", 4)[2] // http://HOST/path
	return proxyExchange(ctx, cfg, "GET "+url+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
}

// proxyConnect asks the proxy for a tunnel to hostport.
func proxyConnect(ctx context.Context, cfg config, hostport string) (string, error) {
	return proxyExchange(ctx, cfg, "CONNECT "+hostport+" HTTP/1.1\r\nHost: "+hostport+"\r\n\r\n")
}

func proxyExchange(ctx context.Context, cfg config, request string) (string, error) {
	d := net.Dialer{Timeout: cfg.dialTimeout}
	c, err := d.DialContext(ctx, "tcp", cfg.proxyAddr)
	if err != nil {
		return "", fmt.Errorf("dial proxy: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * cfg.dialTimeout))
	if _, err := c.Write([]byte(request)); err != nil {
		return "", fmt.Errorf("write to proxy: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", fmt.Errorf("read proxy response: %w", err)
	}
	resp.Body.Close()
	return resp.Status, nil
}

// proxyChecks: a name not on the allowlist is refused; an allowlisted one
// (when the test names one) goes through.
func proxyChecks(ctx context.Context, cfg config, proxyUp bool) []selftest.Check {
	if !proxyUp {
		why := "no proxy listening on " + cfg.proxyAddr + " (a workspace started without the credential proxy)"
		return []selftest.Check{
			notApplicable("network.proxy_denies", "the proxy refuses "+cfg.deniedHost, why),
			notApplicable("network.proxy_allows", "the proxy tunnels to an allowlisted host", why),
		}
	}
	status, err := proxyConnect(ctx, cfg, cfg.deniedHost)
	obs := "CONNECT answered " + status
	if err != nil {
		obs = shortErr(err)
	}
	checks := []selftest.Check{check("network.proxy_denies", "the proxy refuses CONNECT "+cfg.deniedHost+" (not allowlisted)", obs,
		err == nil && !strings.HasPrefix(status, "2"), "the proxy tunnels to hosts that are not on its allowlist")}
	if cfg.allowedHost == "" {
		return append(checks, notApplicable("network.proxy_allows", "the proxy tunnels to an allowlisted host", "no -allowed-host given"))
	}
	status, err = proxyConnect(ctx, cfg, cfg.allowedHost)
	obs = "CONNECT answered " + status
	if err != nil {
		obs = shortErr(err)
	}
	return append(checks, check("network.proxy_allows", "the proxy tunnels to "+cfg.allowedHost+" (allowlisted)", obs,
		err == nil && strings.HasPrefix(status, "200"), "the proxy refuses an allowlisted host: workspaces cannot reach what they need"))
}

// dnsCheck: on ECS the Route 53 DNS Firewall answers NXDOMAIN for names
// off the allowlist; a Docker workspace has no network and no DNS.
func dnsCheck(ctx context.Context, cfg config, env runtimeEnv) selftest.Check {
	if env.runtime != selftest.RuntimeECS {
		return notApplicable("network.dns_firewall", cfg.dnsProbe+" does not resolve", "no network and no DNS on "+env.runtime+"; the DNS firewall is an ECS (VPC) control")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.dialTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, cfg.dnsProbe)
	obs := "resolved to " + strings.Join(addrs, ", ")
	if err != nil {
		obs = "not resolved: " + shortErr(err)
	}
	return check("network.dns_firewall", cfg.dnsProbe+" (not allowlisted) does not resolve", obs, err != nil,
		"names off the allowlist resolve: DNS can be used to exfiltrate data or find direct routes")
}
