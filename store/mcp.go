package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The MCP header rules of a conversation are secrets (they carry the MCP
// servers' tokens). They live in their own key, mcp:{cid}, never in the
// conversation hash (whose snapshots are published to watchers), and the
// store never logs them. The workspace records only the digest of the set
// its proxy holds.

// RulesDigest is the identity of a rule set as stored: hex SHA-256 of its
// JSON, "" for no rules.
func RulesDigest(rulesJSON []byte) string {
	if len(rulesJSON) == 0 || string(rulesJSON) == "[]" || string(rulesJSON) == "null" {
		return ""
	}
	sum := sha256.Sum256(rulesJSON)
	return hex.EncodeToString(sum[:])
}

// SetMCPRules stores conversation cid's MCP rules (a JSON array of
// mcprule.Rule; empty or "[]" clears them) and reports the set's digest
// and whether it differs from what was stored.
func (v Conversations) SetMCPRules(ctx context.Context, cid string, rulesJSON []byte) (digest string, changed bool, err error) {
	digest = RulesDigest(rulesJSON)
	if digest == "" {
		rulesJSON = nil
	}
	n, err := v.c.run(ctx, scriptMCPSet, []string{v.c.k.mcp(cid)}, string(rulesJSON), digest).Int()
	if err != nil {
		return "", false, fmt.Errorf("set mcp rules of %s: %w", cid, err)
	}
	return digest, n == 1, nil
}

// MCPRules returns conversation cid's MCP rules (JSON) and their digest;
// nil and "" when it has none.
func (v Conversations) MCPRules(ctx context.Context, cid string) (rulesJSON []byte, digest string, err error) {
	vals, err := v.c.rdb.HMGet(ctx, v.c.k.mcp(cid), "rules", "digest").Result()
	if err != nil && err != redis.Nil {
		return nil, "", fmt.Errorf("read mcp rules of %s: %w", cid, err)
	}
	r, _ := vals[0].(string)
	d, _ := vals[1].(string)
	if d == "" {
		return nil, "", nil
	}
	return []byte(r), d, nil
}

// MarkRulesApplied records that workspace wid's proxy now holds the rule
// set with digest. It reports false for an unknown or stopped workspace.
func (v Conversations) MarkRulesApplied(ctx context.Context, wid, digest string) (bool, error) {
	n, err := v.c.run(ctx, scriptRulesApplied, []string{v.c.k.ws(wid)}, digest).Int()
	if err != nil {
		return false, fmt.Errorf("mark rules applied on %s: %w", wid, err)
	}
	return n == 1, nil
}

// MarkRestored records that saved checkpoint (files and session) was
// restored into workspace wid (field restored). It reports false for an
// unknown or stopped workspace.
func (v Conversations) MarkRestored(ctx context.Context, wid, checkpoint string) (bool, error) {
	n, err := v.c.run(ctx, scriptRestored, []string{v.c.k.ws(wid)}, checkpoint).Int()
	if err != nil {
		return false, fmt.Errorf("mark checkpoint restored on %s: %w", wid, err)
	}
	return n == 1, nil
}
