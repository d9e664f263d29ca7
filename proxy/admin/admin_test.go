package admin

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestDeriveAdminToken(t *testing.T) {
	t.Parallel()
	k := []byte("backend-key")
	a, b := DeriveAdminToken(k, "task-1"), DeriveAdminToken(k, "task-1")
	if a != b || len(a) != 64 {
		t.Fatalf("not deterministic or not 256-bit hex: %q %q", a, b)
	}
	if a == DeriveAdminToken(k, "task-2") || a == DeriveAdminToken([]byte("other-key"), "task-1") {
		t.Fatal("token does not depend on both key and client token")
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"version":1,"rules":[]}`)
	sig := Sign("tok", "PUT", RulesPath, now.Unix(), body)
	ts := strconv.FormatInt(now.Unix(), 10)
	if err := Verify("tok", "PUT", RulesPath, ts, sig, body, now); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"wrong token":   Verify("other", "PUT", RulesPath, ts, sig, body, now),
		"other body":    Verify("tok", "PUT", RulesPath, ts, sig, []byte("{}"), now),
		"other method":  Verify("tok", "POST", RulesPath, ts, sig, body, now),
		"stale":         Verify("tok", "PUT", RulesPath, ts, sig, body, now.Add(MaxSkew+time.Second)),
		"future":        Verify("tok", "PUT", RulesPath, ts, sig, body, now.Add(-MaxSkew-time.Second)),
		"bad timestamp": Verify("tok", "PUT", RulesPath, "x", sig, body, now),
		"disabled":      Verify("", "PUT", RulesPath, ts, Sign("", "PUT", RulesPath, now.Unix(), body), body, now),
		"empty sig":     Verify("tok", "PUT", RulesPath, ts, "", body, now),
	} {
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v; want ErrUnauthorized", name, err)
		}
	}
}
