package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// Capabilities the runtimes provide for personalisation, declared here
// (consumer side); cmd/ adapts each runtime to them. Each may be nil.

// ProxyRules sets the MCP header rules of a workspace's credential proxy:
// in-process on Docker (Proxy.SetRules keyed by the start token), through
// the sidecar's signed admin API on ECS. The rules replace the previous
// set. Implementations never log the rules' header values.
type ProxyRules interface {
	SetProxyRules(ctx context.Context, ws workspace.Info, rules []mcprule.Rule) error
}

// Claim is the durable record of whom a workspace serves. Docker labels
// are fixed at create time and a pool workspace is claimed later, so the
// record lives where the runtime keeps it and the workspace cannot reach
// (a host-side file on Docker, task tags on ECS). The reconciler restores
// Redis from it. Owner is the API key's public identifier (a hash).
type Claim struct {
	Conversation string `json:"conversation"`
	Owner        string `json:"owner"`
	Tenant       string `json:"tenant"`
	Generation   int64  `json:"generation"`
}

// ClaimRecords writes and reads claim records.
type ClaimRecords interface {
	// RecordClaim records (or replaces) ws's claim. Idempotent.
	RecordClaim(ctx context.Context, ws workspace.Info, c Claim) error
	// ReadClaim returns ws's claim; false if it has none.
	ReadClaim(ctx context.Context, ws workspace.Info) (Claim, bool, error)
}

// Restorer puts a conversation's saved files into a fresh workspace before
// it serves (S3 in production). It reports whether there was anything to
// restore. An error is retried (the workspace is not marked ready).
type Restorer interface {
	Restore(ctx context.Context, t workspace.RestoreTarget) (restored bool, err error)
}

// PersonaliserOptions configure a Personaliser; every capability may be nil
// (that step is skipped).
type PersonaliserOptions struct {
	Rules    ProxyRules
	Claims   ClaimRecords
	Restorer Restorer
	Logger   *slog.Logger
}

// Personaliser makes a started workspace a conversation's: it records the
// claim durably, gives the workspace's proxy the conversation's MCP rules,
// and restores the conversation's files, before the workspace is marked
// ready (cold and warm starts alike). A nil *Personaliser does nothing.
// Safe for concurrent use.
type Personaliser struct {
	st   PersonaliseStore
	opts PersonaliserOptions
	log  *slog.Logger
}

// NewPersonaliser returns a Personaliser.
func NewPersonaliser(st PersonaliseStore, opts PersonaliserOptions) *Personaliser {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Personaliser{st: st, opts: opts, log: opts.Logger.With("component", "personaliser")}
}

// Personalise makes ws conv's: claim record, MCP rules, files. gen is the
// generation the workspace serves. Idempotent: a retry after a failure
// redoes every step.
func (p *Personaliser) Personalise(ctx context.Context, conv store.Conversation, ws workspace.Info, gen int64) error {
	if p == nil {
		return nil
	}
	// The claim record comes first: once a workspace holds anything of
	// the conversation (rules, files), a reconciler that lost Redis must
	// see whose it is, never return it to the pool.
	if p.opts.Claims != nil {
		c := Claim{Conversation: conv.ID, Owner: conv.Owner, Tenant: conv.Tenant, Generation: gen}
		if err := p.opts.Claims.RecordClaim(ctx, ws, c); err != nil {
			return fmt.Errorf("personalise workspace %s: record claim: %w", ws.ID, err)
		}
	}
	if err := p.applyRules(ctx, conv.ID, ws, ""); err != nil {
		return fmt.Errorf("personalise workspace %s: %w", ws.ID, err)
	}
	if p.opts.Restorer != nil {
		restored, err := p.opts.Restorer.Restore(ctx, workspace.RestoreTarget{
			Tenant: conv.Tenant, Conversation: conv.ID, Workspace: ws.ID, Endpoint: ws.Endpoint,
		})
		if err != nil {
			return fmt.Errorf("personalise workspace %s: restore files: %w", ws.ID, err)
		}
		p.log.Debug("files restored", "conversation", conv.ID, "workspace", ws.ID, "restored", restored)
	}
	return nil
}

// SyncRules gives the ready conversation's workspace the conversation's
// current MCP rules if its proxy holds another set (the API calls it
// before relaying, after the rules changed). Level-based: it compares the
// stored digests, so a change whose apply failed is retried on the next
// request.
func (p *Personaliser) SyncRules(ctx context.Context, conv store.Conversation) error {
	if p == nil || p.opts.Rules == nil || conv.Workspace == "" {
		return nil
	}
	w, err := p.st.Workspace(ctx, conv.Workspace)
	if err != nil {
		return fmt.Errorf("sync mcp rules of %s: %w", conv.ID, err)
	}
	ws := workspace.Info{ID: w.ID, Token: w.Token, Endpoint: w.Endpoint, Conversation: conv.ID, Tenant: w.Tenant, Pool: w.Pool}
	if err := p.applyRules(ctx, conv.ID, ws, w.MCPDigest); err != nil {
		return fmt.Errorf("sync mcp rules of %s: %w", conv.ID, err)
	}
	return nil
}

// ReapplyRules gives ws's proxy its conversation's rules whatever it is
// recorded to hold (a restarted in-process proxy lost them).
func (p *Personaliser) ReapplyRules(ctx context.Context, cid string, ws workspace.Info) error {
	if p == nil {
		return nil
	}
	return p.applyRules(ctx, cid, ws, "\x00")
}

// applyRules sets cid's rules on ws's proxy unless held equals their
// digest, then records the digest. A workspace that never had rules and
// whose conversation has none needs nothing.
func (p *Personaliser) applyRules(ctx context.Context, cid string, ws workspace.Info, held string) error {
	if p.opts.Rules == nil {
		return nil
	}
	raw, digest, err := p.st.MCPRules(ctx, cid)
	if err != nil {
		return err
	}
	if digest == held {
		return nil
	}
	var rules []mcprule.Rule
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rules); err != nil {
			// Never echo the rules: they are secrets.
			return errors.New("stored mcp rules are not valid JSON")
		}
	}
	if err := p.opts.Rules.SetProxyRules(ctx, ws, rules); err != nil {
		return fmt.Errorf("set mcp rules: %w", err)
	}
	if _, err := p.st.MarkRulesApplied(ctx, ws.ID, digest); err != nil {
		return err
	}
	p.log.Info("mcp rules applied", "conversation", cid, "workspace", ws.ID, "rules", mcprule.List(rules))
	return nil
}
