package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/workspace"
)

// The runtime's per-workspace state on the host: one claim record and one
// rules file per workspace, named by its start token, in directories beside
// (never inside) the per-workspace socket directories. Only a workspace's
// own socket directory is bind-mounted into it, so a workspace can neither
// read nor forge any of them. Tokens never start with '.', so these names
// cannot collide with a socket directory.
const (
	claimsDir = ".claims" // whom the workspace serves (JSON workspace.Claim)
	rulesDir  = ".rules"  // its proxy's MCP rules (JSON; secrets, 0600)
)

// RecordClaim writes ws's claim record atomically, replacing an older one.
// The record survives a restart of workspaced and a Redis flush; the
// reconciler restores Redis from it.
func (r *Runtime) RecordClaim(_ context.Context, ws workspace.Info, c workspace.Claim) error {
	if err := workspace.ValidToken(ws.Token); err != nil {
		return fmt.Errorf("record claim of %s: %w", ws.ID, err)
	}
	if err := r.writeState(claimsDir, ws.Token, c); err != nil {
		return fmt.Errorf("record claim of %s: %w", ws.Token, err)
	}
	return nil
}

// ReadClaim returns ws's claim record; false if there is none.
func (r *Runtime) ReadClaim(_ context.Context, ws workspace.Info) (workspace.Claim, bool, error) {
	var c workspace.Claim
	ok, err := r.readState(claimsDir, ws.Token, &c)
	if err != nil {
		return workspace.Claim{}, false, fmt.Errorf("read claim of %s: %w", ws.Token, err)
	}
	return c, ok, nil
}

// SetProxyRules persists ws's MCP rules beside its claim record (0600: they
// hold header secrets) and gives them to its proxy listener when this
// Runtime hosts it. Recover gives persisted rules to re-opened listeners.
func (r *Runtime) SetProxyRules(_ context.Context, ws workspace.Info, rules []mcprule.Rule) error {
	if err := workspace.ValidToken(ws.Token); err != nil {
		return fmt.Errorf("set proxy rules of %s: %w", ws.ID, err)
	}
	if _, err := mcprule.Compile(rules); err != nil {
		return fmt.Errorf("set proxy rules of %s: %w: %w", ws.Token, workspace.ErrInvalidSpec, err)
	}
	if err := r.writeState(rulesDir, ws.Token, rules); err != nil {
		return fmt.Errorf("set proxy rules of %s: %w", ws.Token, err)
	}
	if r.opts.Proxy == nil {
		return nil
	}
	if err := r.opts.Proxy.SetRules(ws.Token, rules); err != nil {
		return fmt.Errorf("set proxy rules of %s: %w", ws.Token, err)
	}
	return nil
}

// Recover re-opens the host side of every running workspace of this
// runtime that it does not serve yet (a restarted workspaced serves no
// proxy socket until then, and the workspace's MCP and model calls fail):
// its socket directory, its proxy listener, and the rules persisted for
// it. It reports how many listeners it opened. Without a ProxyHost there
// is nothing to recover.
func (r *Runtime) Recover(ctx context.Context) (int, error) {
	if r.opts.Proxy == nil {
		return 0, nil
	}
	infos, err := r.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("recover workspaces: %w", err)
	}
	n := 0
	var errs []error
	for _, info := range infos {
		if info.Status != workspace.StatusRunning || workspace.ValidToken(info.Token) != nil {
			continue
		}
		opened, err := r.recoverOne(ctx, info.Token)
		if err != nil {
			errs = append(errs, fmt.Errorf("recover workspace %s: %w", info.ID, err))
			continue
		}
		if opened {
			n++
			r.log.Info("workspace recovered: proxy listener re-opened", "container_id", info.ID, "token", info.Token)
		}
	}
	return n, errors.Join(errs...)
}

// recoverOne gives token its persisted rules, then opens its listener if
// this Runtime has not. Rules first: the listener never serves without
// them. Concurrent calls for one token (and Starts) share one attempt.
func (r *Runtime) recoverOne(ctx context.Context, token string) (bool, error) {
	v, err, _ := r.starts.Do("recover:"+token, func() (any, error) {
		if r.isOpen(token) {
			return false, nil
		}
		var rules []mcprule.Rule
		if _, err := r.readState(rulesDir, token, &rules); err != nil {
			return false, fmt.Errorf("read rules: %w", err)
		}
		if err := r.opts.Proxy.SetRules(token, rules); err != nil {
			return false, fmt.Errorf("set rules: %w", err)
		}
		if err := r.prepare(ctx, token); err != nil {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

// PruneClaims removes the claim records and rules whose workspace
// container no longer exists (removed behind the runtime's back, or by a
// Stop that crashed half-way), and returns how many workspaces' state it
// removed. The state of existing containers, running or not, is kept.
func (r *Runtime) PruneClaims(ctx context.Context) (int, error) {
	var tokens []string
	for _, dir := range []string{claimsDir, rulesDir} {
		entries, err := os.ReadDir(filepath.Join(r.opts.SocketBasePath, dir))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("prune claims: %w", err)
		}
		for _, e := range entries {
			// Temporary files of a write in progress, and foreign entries,
			// are not ours to remove.
			if name := e.Name(); !strings.HasPrefix(name, ".") && workspace.ValidToken(name) == nil {
				tokens = append(tokens, name)
			}
		}
	}
	infos, err := r.List(ctx) // after reading the directories: state written since is kept
	if err != nil {
		return 0, fmt.Errorf("prune claims: %w", err)
	}
	live := make(map[string]bool, len(infos))
	for _, i := range infos {
		live[i.Token] = true
	}
	pruned := map[string]bool{}
	for _, token := range tokens {
		if live[token] || pruned[token] {
			continue
		}
		if err := r.removeState(token); err != nil {
			return len(pruned), fmt.Errorf("prune claims: %w", err)
		}
		pruned[token] = true
	}
	return len(pruned), nil
}

// Capabilities: the proxies are in-process when a ProxyHost is set, and
// the engine's events are published by the backend.
func (r *Runtime) Capabilities() workspace.Capabilities {
	return workspace.Capabilities{HostProxies: r.opts.Proxy != nil, LocalEvents: true}
}

// writeState writes v as token's JSON file in dir, atomically (write,
// then rename), readable by the backend only.
func (r *Runtime) writeState(dir, token string, v any) error {
	dir = filepath.Join(r.opts.SocketBasePath, dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+token+".*") // 0600
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, token)); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}

// readState decodes token's JSON file in dir into v; false if there is
// none (or the token is not one: never join an unchecked name into a path).
func (r *Runtime) readState(dir, token string, v any) (bool, error) {
	if workspace.ValidToken(token) != nil {
		return false, nil
	}
	b, err := os.ReadFile(filepath.Join(r.opts.SocketBasePath, dir, token))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, err
	}
	return true, nil
}

// removeState deletes token's claim record and rules (the workspace is
// gone).
func (r *Runtime) removeState(token string) error {
	var errs []error
	for _, dir := range []string{claimsDir, rulesDir} {
		if err := os.Remove(filepath.Join(r.opts.SocketBasePath, dir, token)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// withClaim fills a claimed pool workspace's conversation and tenant from
// its claim record (its labels predate the claim).
func (r *Runtime) withClaim(info workspace.Info) workspace.Info {
	if info.Conversation != "" {
		return info
	}
	var c workspace.Claim
	ok, err := r.readState(claimsDir, info.Token, &c)
	if err != nil {
		r.log.Warn("claim record unreadable", "token", info.Token, "err", err)
	}
	if ok {
		info.Conversation = c.Conversation
		if info.Tenant == "" {
			info.Tenant = c.Tenant
		}
	}
	return info
}

// isOpen reports whether this Runtime serves token's proxy listener.
func (r *Runtime) isOpen(token string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opened[token]
}
