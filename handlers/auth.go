package handlers

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/workspaced/workspaced/workspace"
)

// DefaultTenant is the tenant of a key listed without one.
const DefaultTenant = "default"

// Principal is the authenticated caller: which tenant, and an owner ID that
// stands for the key without revealing it (conversations are owned by it).
type Principal struct {
	Tenant string
	// Owner is "k_" + the first 16 hex digits of SHA-256(key): stable, safe
	// to store and log.
	Owner string
}

type apiKey struct {
	digest [sha256.Size]byte
	p      Principal
}

// Keys is the set of accepted API keys. The zero value accepts nothing.
// It is safe for concurrent use (read-only after construction).
type Keys struct{ keys []apiKey }

// LogValue keeps keys out of logs: only their count is shown.
func (k *Keys) LogValue() slog.Value { return slog.IntValue(k.Len()) }

// Len is the number of keys.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// ParseKeys reads keys from a comma-separated list (API_KEYS) and, when
// file is non-nil, from one entry per line (API_KEYS_FILE; blank lines and
// lines starting with '#' are skipped). An entry is "tenant:key" or "key".
func ParseKeys(list string, file io.Reader) (*Keys, error) {
	var entries []string
	for _, e := range strings.Split(list, ",") {
		entries = append(entries, e)
	}
	if file != nil {
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			entries = append(entries, line)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read api keys file: %w", err)
		}
	}
	k := &Keys{}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		tenant, key, ok := strings.Cut(e, ":")
		if !ok {
			tenant, key = DefaultTenant, e
		}
		if tenant == "" || len(key) < 16 {
			// Never echo the entry: it is a secret.
			return nil, fmt.Errorf("api key entry %d: want tenant:key with a key of at least 16 characters", i+1)
		}
		if err := workspace.ValidTenant(tenant); err != nil {
			// Not echoed either: an entry whose key holds a ':' would
			// show part of the key here.
			return nil, fmt.Errorf("api key entry %d: the tenant must be 1-128 of [A-Za-z0-9_.@+=-], starting with a letter or digit (it becomes an ECS tag value and an S3 key segment)", i+1)
		}
		d := sha256.Sum256([]byte(key))
		k.keys = append(k.keys, apiKey{digest: d, p: Principal{Tenant: tenant, Owner: "k_" + hex.EncodeToString(d[:8])}})
	}
	return k, nil
}

// Lookup returns the principal of key. It compares digests in constant
// time and always walks every key, so timing reveals nothing about which
// key (or how much of one) matched.
func (k *Keys) Lookup(key string) (Principal, bool) {
	if k == nil || key == "" {
		return Principal{}, false
	}
	d := sha256.Sum256([]byte(key))
	var found Principal
	matched := 0
	for _, ak := range k.keys {
		eq := subtle.ConstantTimeCompare(d[:], ak.digest[:])
		if eq == 1 {
			found = ak.p
		}
		matched |= eq
	}
	return found, matched == 1
}

var errUnauthorized = errors.New("missing or invalid API key")

const principalKey = "workspaced.principal"

// requireKey is the Bearer-key middleware.
func requireKey(keys *Keys) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			auth := c.Request().Header.Get(echo.HeaderAuthorization)
			scheme, token, ok := strings.Cut(auth, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return errUnauthorized
			}
			p, ok := keys.Lookup(strings.TrimSpace(token))
			if !ok {
				return errUnauthorized
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

func principal(c echo.Context) Principal {
	p, _ := c.Get(principalKey).(Principal)
	return p
}
