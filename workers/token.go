package workers

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// WorkspaceToken is the start token of conversation cid's workspace in
// generation gen: deterministic, so every delivery of a request (on any
// replica) starts the same workspace, and new after a workspace is lost or
// released (the generation advances), so the next start is a new one. It
// satisfies workspace.ValidToken (42 characters).
func WorkspaceToken(cid string, gen int64) string {
	sum := sha256.Sum256([]byte(cid + "/" + strconv.FormatInt(gen, 10)))
	return "c-" + hex.EncodeToString(sum[:])[:40]
}
