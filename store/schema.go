package store

import (
	"fmt"
	"strings"
)

// The key schema: every key and channel the store uses, in one table.
// Go builds keys from it (keys below), every Lua script gets one helper per
// entry generated from it (luaKeyHelpers), and docs/redis.md's Keys table
// must list exactly its patterns (TestSchemaDocumented). A pattern is
// written after the prefix; {name} is a parameter, everything else literal.
const (
	patConv          = "conv:{cid}"
	patConvEvents    = "conv:{cid}:events"
	patWorkspace     = "ws:{wid}"
	patWorkspaces    = "workspaces"
	patProvisionLock = "lock:provision:{cid}"
	patLastUse       = "lastuse"
	patStreams       = "streams:{wid}"
	patPoolStarting  = "pool:starting"
	patPoolAvailable = "pool:available"
	patPoolClaimed   = "pool:claimed"
	patPoolReserved  = "pool:reserved"
	patPoolEvents    = "pool:events"
	patLease         = "lease:{name}"
	patMCP           = "mcp:{cid}"
	patRun           = "run:{rid}"
	patRunLog        = "run:{rid}:log"
	patConvRuns      = "conv:{cid}:runs"
	patRunsActive    = "runs:active"
)

// Redis types of the schema's entries, as docs/redis.md writes them.
const (
	TypeHash    = "hash"
	TypeZSet    = "zset"
	TypeChannel = "pub/sub channel"
	TypeStream  = "stream"
)

// KeySpec is one entry of the key schema.
type KeySpec struct {
	// Pattern follows the prefix: literal text and {parameters}.
	Pattern string
	// Type is TypeHash, TypeZSet, TypeStream or TypeChannel.
	Type string
	// Lua names the helper every script gets: key_<Lua>(parameters...).
	Lua string
}

// Schema returns every key and channel the store uses, in the order
// docs/redis.md lists them.
func Schema() []KeySpec {
	return []KeySpec{
		{patConv, TypeHash, "conv"},
		{patWorkspace, TypeHash, "ws"},
		{patWorkspaces, TypeZSet, "workspaces"},
		{patProvisionLock, TypeHash, "provision_lock"},
		{patLastUse, TypeZSet, "lastuse"},
		{patStreams, TypeZSet, "streams"},
		{patPoolStarting, TypeZSet, "pool_starting"},
		{patPoolAvailable, TypeZSet, "pool_available"},
		{patPoolClaimed, TypeZSet, "pool_claimed"},
		{patPoolReserved, TypeZSet, "pool_reserved"},
		{patPoolEvents, TypeChannel, "pool_events"},
		{patLease, TypeHash, "lease"},
		{patMCP, TypeHash, "mcp"},
		{patConvEvents, TypeChannel, "conv_events"},
		{patRun, TypeHash, "run"},
		{patRunLog, TypeStream, "run_log"},
		{patConvRuns, TypeZSet, "conv_runs"},
		{patRunsActive, TypeZSet, "runs_active"},
	}
}

// segment is a piece of a pattern: literal text, or a parameter's name.
type segment struct {
	text  string
	param bool
}

// segments splits a pattern into literal text and parameters.
func segments(pattern string) []segment {
	var out []segment
	for pattern != "" {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return append(out, segment{text: pattern})
		}
		if i > 0 {
			out = append(out, segment{text: pattern[:i]})
		}
		j := strings.IndexByte(pattern[i:], '}')
		out = append(out, segment{text: pattern[i+1 : i+j], param: true})
		pattern = pattern[i+j+1:]
	}
	return out
}

// Key builds the concrete key of pattern under prefix with the given
// parameter values, in the pattern's order. It panics if their number
// does not match the pattern's parameters: that is a bug in the caller.
func Key(prefix, pattern string, params ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	n := 0
	for _, s := range segments(pattern) {
		if !s.param {
			b.WriteString(s.text)
			continue
		}
		if n >= len(params) {
			panic(fmt.Sprintf("store: key %q needs more than %d parameters", pattern, len(params)))
		}
		b.WriteString(params[n])
		n++
	}
	if n != len(params) {
		panic(fmt.Sprintf("store: key %q takes %d parameters, got %d", pattern, n, len(params)))
	}
	return b.String()
}

// MatchKey returns the schema entry that concrete key (with prefix) is an
// instance of. Parameters match any non-empty text, so where two patterns
// fit (conv:{cid} and conv:{cid}:events) the one with more literal text
// wins.
func MatchKey(prefix, key string) (KeySpec, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return KeySpec{}, false
	}
	var best KeySpec
	bestLit := -1
	for _, spec := range Schema() {
		if lit, ok := match(segments(spec.Pattern), rest); ok && lit > bestLit {
			best, bestLit = spec, lit
		}
	}
	return best, bestLit >= 0
}

// match reports whether s is an instance of segs, and how many literal
// bytes the pattern has.
func match(segs []segment, s string) (int, bool) {
	if len(segs) == 0 {
		return 0, s == ""
	}
	head := segs[0]
	if !head.param {
		rest, ok := strings.CutPrefix(s, head.text)
		if !ok {
			return 0, false
		}
		n, ok := match(segs[1:], rest)
		return n + len(head.text), ok
	}
	for i := 1; i <= len(s); i++ { // a parameter is never empty
		if n, ok := match(segs[1:], s[i:]); ok {
			return n, true
		}
	}
	return 0, false
}

// luaKeyHelpers is the Lua source of one function per schema entry,
// key_<Lua>(params...), building the key from the prelude's prefix P.
// Scripts name keys only through KEYS[] and these helpers.
func luaKeyHelpers() string {
	var b strings.Builder
	b.WriteString("-- Key helpers, generated from store.Schema (store/schema.go).\n")
	for _, spec := range Schema() {
		var params, expr []string
		expr = append(expr, "P")
		for _, s := range segments(spec.Pattern) {
			if s.param {
				params = append(params, s.text)
				expr = append(expr, s.text)
			} else {
				expr = append(expr, "'"+s.text+"'")
			}
		}
		fmt.Fprintf(&b, "local function key_%s(%s) return %s end\n",
			spec.Lua, strings.Join(params, ", "), strings.Join(expr, " .. "))
	}
	return b.String()
}

// keys builds the store's concrete keys and channels under one prefix.
type keys struct{ prefix string }

func (k keys) key(pattern string, params ...string) string { return Key(k.prefix, pattern, params...) }

func (k keys) conv(cid string) string     { return k.key(patConv, cid) }
func (k keys) channel(cid string) string  { return k.key(patConvEvents, cid) }
func (k keys) ws(wid string) string       { return k.key(patWorkspace, wid) }
func (k keys) lock(cid string) string     { return k.key(patProvisionLock, cid) }
func (k keys) streams(wid string) string  { return k.key(patStreams, wid) }
func (k keys) workspaces() string         { return k.key(patWorkspaces) }
func (k keys) lastuse() string            { return k.key(patLastUse) }
func (k keys) poolAvailable() string      { return k.key(patPoolAvailable) }
func (k keys) poolClaimed() string        { return k.key(patPoolClaimed) }
func (k keys) poolStarting() string       { return k.key(patPoolStarting) }
func (k keys) poolReserved() string       { return k.key(patPoolReserved) }
func (k keys) poolChannel() string        { return k.key(patPoolEvents) }
func (k keys) lease(name string) string   { return k.key(patLease, name) }
func (k keys) mcp(cid string) string      { return k.key(patMCP, cid) }
func (k keys) run(rid string) string      { return k.key(patRun, rid) }
func (k keys) runLog(rid string) string   { return k.key(patRunLog, rid) }
func (k keys) convRuns(cid string) string { return k.key(patConvRuns, cid) }
func (k keys) runsActive() string         { return k.key(patRunsActive) }
