package main

import (
	"context"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/store"
)

// poolView answers GET /v1/pool: the configured bounds and the inventory.
type poolView struct {
	st  store.Pool
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
