package main

import (
	"context"
	"fmt"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/runtime/docker"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
	"github.com/workspaced/workspaced/workspace"
)

// Adapters from the concrete runtimes and bus to the capabilities the
// workers declare. Each runtime keys its proxy and claim record by the
// workspace's start token.

// hostProxyRules sets rules on the in-process proxy of Docker mode: the
// workspace's listener is keyed by its start token.
type hostProxyRules struct{ px *proxy.Proxy }

func (h hostProxyRules) SetProxyRules(_ context.Context, ws workspace.Info, rules []mcprule.Rule) error {
	if err := workspace.ValidToken(ws.Token); err != nil {
		return fmt.Errorf("set proxy rules of %s: %w", ws.ID, err)
	}
	return h.px.SetRules(ws.Token, rules)
}

// dockerClaims stores claim records as host-side files (runtime/docker).
type dockerClaims struct{ rt *docker.Runtime }

func (d dockerClaims) RecordClaim(ctx context.Context, ws workspace.Info, c workers.Claim) error {
	return d.rt.RecordClaim(ctx, ws.Token, docker.Claim(c))
}

func (d dockerClaims) ReadClaim(_ context.Context, ws workspace.Info) (workers.Claim, bool, error) {
	c, ok, err := d.rt.ReadClaim(ws.Token)
	return workers.Claim(c), ok, err
}

// ecsClaims stores claim records as task tags (runtime/ecs).
type ecsClaims struct{ rt *ecs.Runtime }

func (e ecsClaims) RecordClaim(ctx context.Context, ws workspace.Info, c workers.Claim) error {
	return e.rt.RecordClaim(ctx, ws.ID, ecs.Claim(c))
}

func (e ecsClaims) ReadClaim(ctx context.Context, ws workspace.Info) (workers.Claim, bool, error) {
	c, ok, err := e.rt.ReadClaim(ctx, ws.ID)
	return workers.Claim(c), ok, err
}

// busReleases publishes GC's idle releases on the bus.
type busReleases struct{ b *bus.Bus }

func (p busReleases) PublishReleased(ctx context.Context, cmd events.WorkspaceReleased) error {
	return bus.PublishReleased(ctx, p.b.Publisher(), cmd, cmd.ConversationID+"/"+cmd.WorkspaceID)
}

// poolView answers GET /v1/pool: the configured bounds and the inventory.
type poolView struct {
	st  *store.Store
	cfg config.Pool
}

func (p poolView) Inventory(ctx context.Context) (any, error) {
	c, err := p.st.PoolCounts(ctx)
	if err != nil {
		return nil, err
	}
	max := p.cfg.MaxSize
	if max < p.cfg.MinSize {
		max = p.cfg.MinSize
	}
	return struct {
		Enabled bool `json:"enabled"`
		MinSize int  `json:"min_size"`
		MaxSize int  `json:"max_size"`
		store.PoolCounts
	}{poolEnabled(p.cfg), p.cfg.MinSize, max, c}, nil
}
