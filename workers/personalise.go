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

// Restorer puts a conversation's saved files (and Claude session) into a
// fresh workspace before it serves (S3 in production). It returns the
// checkpoint it restored, nil when there was none. An error is retried
// (the workspace is not marked ready).
type Restorer interface {
	RestoreCheckpoint(ctx context.Context, t workspace.RestoreTarget) (*workspace.Checkpoint, error)
}

// PersonaliserOptions configure a Personaliser.
type PersonaliserOptions struct {
	// Restorer restores the conversation's files; nil skips that step.
	Restorer Restorer
	Logger   *slog.Logger
	// Fault, when set, is called at named points ("claimed": after the
	// claim record); fault-injection builds crash the process there. Nil
	// in production.
	Fault func(point string)
}

// Personaliser makes a started workspace a conversation's: it records the
// claim durably, gives the workspace's proxy the conversation's MCP rules,
// and restores the conversation's files, before the workspace is marked
// ready (cold and warm starts alike). A nil *Personaliser does nothing.
// Safe for concurrent use.
type Personaliser struct {
	rt   workspace.Runtime
	st   PersonaliseStore
	opts PersonaliserOptions
	log  *slog.Logger
}

// NewPersonaliser returns a Personaliser that records claims and sets rules
// through rt.
func NewPersonaliser(rt workspace.Runtime, st PersonaliseStore, opts PersonaliserOptions) *Personaliser {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Personaliser{rt: rt, st: st, opts: opts, log: opts.Logger.With("component", "personaliser")}
}

// Personalise makes ws conv's: claim record, MCP rules, files. gen is the
// generation the workspace serves. Idempotent: a retry after a failure
// redoes every step.
func (p *Personaliser) Personalise(ctx context.Context, conv store.Conversation, ws workspace.Info, gen int64) error {
	return p.personalise(ctx, conv, ws, gen, true)
}

// Reclaim is Personalise without restoring files: for a workspace adopted
// after Redis lost it, whose files are newer than the last saved ones.
func (p *Personaliser) Reclaim(ctx context.Context, conv store.Conversation, ws workspace.Info, gen int64) error {
	return p.personalise(ctx, conv, ws, gen, false)
}

func (p *Personaliser) personalise(ctx context.Context, conv store.Conversation, ws workspace.Info, gen int64, restore bool) error {
	if p == nil {
		return nil
	}
	// The claim record comes first: once a workspace holds anything of
	// the conversation (rules, files), a reconciler that lost Redis must
	// see whose it is, never return it to the pool.
	c := workspace.Claim{Conversation: conv.ID, Owner: conv.Owner, Tenant: conv.Tenant, Generation: gen}
	if err := p.rt.RecordClaim(ctx, ws, c); err != nil {
		return fmt.Errorf("personalise workspace %s: record claim: %w", ws.ID, err)
	}
	if err := p.applyRules(ctx, conv.ID, ws, ""); err != nil {
		return fmt.Errorf("personalise workspace %s: %w", ws.ID, err)
	}
	if p.opts.Fault != nil {
		p.opts.Fault("claimed")
	}
	if p.opts.Restorer != nil && restore {
		cp, err := p.opts.Restorer.RestoreCheckpoint(ctx, workspace.RestoreTarget{
			Tenant: conv.Tenant, Conversation: conv.ID, Workspace: ws.ID, Endpoint: ws.Endpoint,
		})
		if err != nil {
			return fmt.Errorf("personalise workspace %s: restore files: %w", ws.ID, err)
		}
		if cp != nil {
			// The API names it in a status event once the workspace is ready.
			if _, err := p.st.MarkRestored(ctx, ws.ID, cp.ID); err != nil {
				return fmt.Errorf("personalise workspace %s: %w", ws.ID, err)
			}
		}
		p.log.Debug("files restored", "conversation", conv.ID, "workspace", ws.ID, "restored", cp != nil)
	}
	return nil
}

// SyncRules gives the ready conversation's workspace the conversation's
// current MCP rules if its proxy holds another set (the API calls it
// before relaying, after the rules changed). Level-based: it compares the
// stored digests, so a change whose apply failed is retried on the next
// request.
func (p *Personaliser) SyncRules(ctx context.Context, conv store.Conversation) error {
	if p == nil || conv.Workspace == "" {
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

// applyRules sets cid's rules on ws's proxy unless held equals their
// digest, then records the digest. A workspace that never had rules and
// whose conversation has none needs nothing.
func (p *Personaliser) applyRules(ctx context.Context, cid string, ws workspace.Info, held string) error {
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
	if err := p.rt.SetProxyRules(ctx, ws, rules); err != nil {
		return fmt.Errorf("set mcp rules: %w", err)
	}
	if _, err := p.st.MarkRulesApplied(ctx, ws.ID, digest); err != nil {
		return err
	}
	p.log.Info("mcp rules applied", "conversation", cid, "workspace", ws.ID, "rules", mcprule.List(rules))
	return nil
}
