package ecs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// DeriveAdminToken returns the credential proxy's per-task admin token:
// hex(HMAC-SHA256(key, clientToken)). Any backend replica holding the key
// can recompute it; the token itself is passed only to the proxy
// container, never to the agent.
//
// TODO(proxy): switch to proxy/admin.DeriveAdminToken once it lands, so
// the derivation lives in one place; TestDeriveAdminTokenVector pins the
// format both must produce.
func DeriveAdminToken(key []byte, clientToken string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(clientToken))
	return hex.EncodeToString(mac.Sum(nil))
}
