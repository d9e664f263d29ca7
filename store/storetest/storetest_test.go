package storetest

import (
	"strings"
	"testing"

	"github.com/workspaced/workspaced/store"
)

// TestCheck: the audit's verdict on recorded keys.
func TestCheck(t *testing.T) {
	t.Parallel()
	docs := map[string]string{"conv:{cid}": store.TypeHash, "lastuse": store.TypeZSet}
	tests := []struct {
		name    string
		key     string
		events  []string
		wantErr string // "" = accepted
	}{
		{"documented hash", "p:conv:c1", []string{"hset", "hincrby"}, ""},
		{"documented zset", "p:lastuse", []string{"zadd", "del"}, ""},
		{"expiry only", "p:conv:c1", []string{"expired"}, ""},
		{"schema key not documented", "p:ws:w1", []string{"hset"}, "is not documented"},
		{"not in the schema", "p:bogus:1", []string{"set"}, "no instance of a store.Schema pattern"},
		{"other prefix", "q:conv:c1", []string{"hset"}, "no instance"},
		{"wrong type", "p:lastuse", []string{"hset"}, "written as a hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{written: map[string]map[string]bool{tc.key: {}}}
			for _, ev := range tc.events {
				r.written[tc.key][ev] = true
			}
			errs := r.check([]string{"p:"}, docs)
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Errorf("check(%q) = %q, want none", tc.key, errs)
			case tc.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0], tc.wantErr)):
				t.Errorf("check(%q) = %q, want one containing %q", tc.key, errs, tc.wantErr)
			}
		})
	}
}

// TestDocumentedKeysParse: the documentation has the schema's form.
func TestDocumentedKeysParse(t *testing.T) {
	t.Parallel()
	if got := DocumentedKeys(t); got["conv:{cid}"] != store.TypeHash {
		t.Errorf("DocumentedKeys: conv:{cid} = %q, want %q", got["conv:{cid}"], store.TypeHash)
	}
}
