package store_test

import (
	"testing"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
)

// TestSchemaDocumented: docs/redis.md's Keys table lists exactly the
// schema's patterns, with their types.
func TestSchemaDocumented(t *testing.T) {
	t.Parallel()
	docs := storetest.DocumentedKeys(t)
	inSchema := map[string]bool{}
	for _, spec := range store.Schema() {
		inSchema[spec.Pattern] = true
		typ, ok := docs[spec.Pattern]
		switch {
		case !ok:
			t.Errorf("store.Schema has %q; %s does not document it", spec.Pattern, storetest.DocsPath)
		case typ != spec.Type:
			t.Errorf("%q: %s says %s, store.Schema says %s", spec.Pattern, storetest.DocsPath, typ, spec.Type)
		}
	}
	for p := range docs {
		if !inSchema[p] {
			t.Errorf("%s documents %q; store.Schema has no such key", storetest.DocsPath, p)
		}
	}
}
