package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/workspaced/workspaced/workspace"
)

// claimsDir holds one claim record per workspace, named by its token,
// beside (never inside) the per-workspace socket directories: only the
// socket directory is bind-mounted into a workspace, so a workspace cannot
// read or forge any claim. Tokens never start with '.', so the name cannot
// collide with a socket directory.
const claimsDir = ".claims"

// Claim is the durable record of whom a workspace serves. Container labels
// are fixed at create time, and a warm-pool workspace is claimed later, so
// the record lives in a host file that survives a workspaced restart and a
// Redis flush; the reconciler restores Redis from it. Owner is the API
// key's public identifier (a hash), not a secret.
type Claim struct {
	Conversation string `json:"conversation"`
	Owner        string `json:"owner,omitempty"`
	Tenant       string `json:"tenant,omitempty"`
	Generation   int64  `json:"generation"`
}

// RecordClaim writes token's claim record atomically (write, then rename),
// replacing an older one.
func (r *Runtime) RecordClaim(_ context.Context, token string, c Claim) error {
	if err := workspace.ValidToken(token); err != nil {
		return fmt.Errorf("record claim: %w", err)
	}
	dir := filepath.Join(r.opts.SocketBasePath, claimsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record claim of %s: %w", token, err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("record claim of %s: %w", token, err)
	}
	tmp, err := os.CreateTemp(dir, "."+token+".*")
	if err != nil {
		return fmt.Errorf("record claim of %s: %w", token, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("record claim of %s: %w", token, err)
	}
	if err := os.Rename(tmp.Name(), r.claimPath(token)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("record claim of %s: %w", token, err)
	}
	return nil
}

// ReadClaim returns token's claim record; false if there is none.
func (r *Runtime) ReadClaim(token string) (Claim, bool, error) {
	if workspace.ValidToken(token) != nil {
		return Claim{}, false, nil
	}
	b, err := os.ReadFile(r.claimPath(token))
	if errors.Is(err, os.ErrNotExist) {
		return Claim{}, false, nil
	}
	if err != nil {
		return Claim{}, false, fmt.Errorf("read claim of %s: %w", token, err)
	}
	var c Claim
	if err := json.Unmarshal(b, &c); err != nil {
		return Claim{}, false, fmt.Errorf("read claim of %s: %w", token, err)
	}
	return c, true, nil
}

func (r *Runtime) claimPath(token string) string {
	return filepath.Join(r.opts.SocketBasePath, claimsDir, token)
}

// removeClaim deletes token's claim record (the workspace is gone).
func (r *Runtime) removeClaim(token string) {
	if err := os.Remove(r.claimPath(token)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("remove claim record failed", "token", token, "error", err)
	}
}

// withClaim fills a claimed pool workspace's conversation and tenant from
// its claim record (its labels predate the claim).
func (r *Runtime) withClaim(info workspace.Info) workspace.Info {
	if info.Conversation != "" {
		return info
	}
	c, ok, err := r.ReadClaim(info.Token)
	if err != nil {
		r.log.Warn("claim record unreadable", "token", info.Token, "error", err)
	}
	if ok {
		info.Conversation = c.Conversation
		if info.Tenant == "" {
			info.Tenant = c.Tenant
		}
	}
	return info
}

// Adopt re-opens the host side of a running workspace that this Runtime
// did not start: its socket directory and its in-process proxy listener
// (a restarted workspaced serves no proxy socket until then, and the
// workspace's MCP and model calls fail). It reports whether it opened the
// proxy now (the caller then re-applies the workspace's MCP rules; the new
// proxy holds none). Not running, not ours, or already open: false, nil.
func (r *Runtime) Adopt(ctx context.Context, id string) (bool, error) {
	c, err := r.engine.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("adopt workspace %s: inspect: %w", id, err)
	}
	if c.Config == nil || !r.managed(c.Config.Labels) || c.State == nil || c.State.Status != container.StateRunning {
		return false, nil
	}
	token := c.Config.Labels[LabelToken]
	if workspace.ValidToken(token) != nil {
		return false, nil
	}
	r.mu.Lock()
	open := r.opened[token]
	r.mu.Unlock()
	if open || r.opts.Proxy == nil {
		return false, nil
	}
	// Concurrent Adopts of one token share one attempt.
	v, err, _ := r.starts.Do("adopt:"+token, func() (any, error) {
		r.mu.Lock()
		open := r.opened[token]
		r.mu.Unlock()
		if open {
			return false, nil
		}
		if err := r.prepare(ctx, token); err != nil {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("adopt workspace %s: %w", id, err)
	}
	if v.(bool) {
		r.log.Info("workspace adopted: proxy listener re-opened", "container_id", c.ID, "token", token)
	}
	return v.(bool), nil
}

// PruneClaims removes claim records whose workspace container no longer
// exists (removed behind the runtime's back, or by a Stop that crashed
// half-way), and returns how many it removed. Records of existing
// containers, running or not, are kept.
func (r *Runtime) PruneClaims(ctx context.Context) (int, error) {
	dir := filepath.Join(r.opts.SocketBasePath, claimsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prune claims: %w", err)
	}
	infos, err := r.List(ctx) // after reading the directory: a record written since is kept
	if err != nil {
		return 0, fmt.Errorf("prune claims: %w", err)
	}
	live := make(map[string]bool, len(infos))
	for _, i := range infos {
		live[i.Token] = true
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || live[name] || workspace.ValidToken(name) != nil {
			continue // temporary files of a write in progress, live or foreign entries
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("prune claims: %w", err)
		}
		n++
	}
	return n, nil
}
