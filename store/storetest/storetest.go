// Package storetest checks the store's Redis schema against its
// documentation: DocumentedKeys reads the Keys table of docs/redis.md, and
// Audit records every key written to a test's redis-server and fails the
// test on a key that is not an instance of a documented pattern of
// store.Schema. The store's tests, the workers' and handlers' tests and
// the end-to-end tests of cmd/workspaced audit their servers, so the
// documentation cannot fall behind what the code writes.
package storetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/store"
)

// DocsPath is the schema's documentation, relative to the module root.
const DocsPath = "docs/redis.md"

// keyRow matches a row of the Keys table: | `P pattern` | type | ...
var keyRow = regexp.MustCompile("^\\| `P ([^`]+)` \\| ([^|]+?) \\|")

// DocumentedKeys returns the patterns of docs/redis.md's Keys table (the
// part after the prefix) and their types.
func DocumentedKeys(t testing.TB) map[string]string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, DocsPath))
	if err != nil {
		t.Fatalf("read the schema documentation: %v", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := keyRow.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]] = strings.TrimSpace(m[2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", DocsPath, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rows of the form | `P pattern` | type | found", DocsPath)
	}
	return out
}

// moduleRoot is the nearest directory above the working directory (a
// test's package directory) holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = up
	}
}

// sentinel is the key Audit writes last to know it has seen every earlier
// write; it is not the store's.
const sentinel = "storetest:audit-sentinel"

// Audit records every key written to srv from now until the test ends
// (Redis keyspace notifications, so writes inside Lua scripts and expiries
// count), then fails t for each key that is not under one of prefixes
// ("" is store.DefaultPrefix), is not an instance of a store.Schema
// pattern, whose pattern docs/redis.md does not document with the type
// the write implies. Call it before anything writes; its check runs at
// cleanup, after cleanups registered later (the code under test stopping).
func Audit(t testing.TB, srv *redistest.Server, prefixes ...string) {
	t.Helper()
	for i, p := range prefixes {
		if p == "" {
			prefixes[i] = store.DefaultPrefix // as store.New does
		}
	}
	docs := DocumentedKeys(t)
	rdb := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.ConfigSet(ctx, "notify-keyspace-events", "KA").Err(); err != nil {
		t.Fatalf("enable keyspace notifications: %v", err)
	}
	ps := rdb.PSubscribe(ctx, "__keyspace@*__:*")
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		t.Fatalf("subscribe to keyspace notifications: %v", err)
	}
	r := &recorder{written: map[string]map[string]bool{}, done: make(chan struct{}), end: make(chan struct{})}
	go r.run(ps.Channel(redis.WithChannelSize(1024)))
	t.Cleanup(func() {
		defer func() { _ = ps.Close(); <-r.end }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rdb.Set(ctx, sentinel, "1", 0).Err(); err != nil {
			t.Errorf("key audit: write the sentinel: %v", err)
			return
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			t.Errorf("key audit: the sentinel's notification never came")
			return
		}
		t.Logf("key audit: patterns written: %s", strings.Join(r.patterns(prefixes), ", "))
		for _, e := range r.check(prefixes, docs) {
			t.Errorf("key audit (%s): %s", DocsPath, e)
		}
	})
}

// recorder collects the keys named by keyspace notifications and the
// events (commands) that wrote them.
type recorder struct {
	mu      sync.Mutex
	written map[string]map[string]bool // key -> events
	done    chan struct{}              // closed when the sentinel was seen
	end     chan struct{}              // closed when run returns
}

func (r *recorder) run(ch <-chan *redis.Message) {
	defer close(r.end)
	seen := false
	for m := range ch {
		_, key, ok := strings.Cut(m.Channel, "__:")
		if !ok {
			continue
		}
		if key == sentinel {
			if !seen {
				seen = true
				close(r.done)
			}
			continue
		}
		r.mu.Lock()
		if r.written[key] == nil {
			r.written[key] = map[string]bool{}
		}
		r.written[key][m.Payload] = true
		r.mu.Unlock()
	}
}

// check returns one line per recorded key the schema or its documentation
// does not cover.
func (r *recorder) check(prefixes []string, docs map[string]string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []string
	for key, evs := range r.written {
		spec, ok := match(prefixes, key)
		if !ok {
			errs = append(errs, fmt.Sprintf("key %q (%s) is no instance of a store.Schema pattern under %q", key, events(evs), prefixes))
			continue
		}
		typ, documented := docs[spec.Pattern]
		switch {
		case !documented:
			errs = append(errs, fmt.Sprintf("key %q: pattern %q is not documented", key, "P "+spec.Pattern))
		case typ != spec.Type:
			errs = append(errs, fmt.Sprintf("key %q: pattern %q is documented as %s, the schema says %s", key, spec.Pattern, typ, spec.Type))
		}
		if want := typeOfEvents(evs); want != "" && want != spec.Type {
			errs = append(errs, fmt.Sprintf("key %q: written as a %s (%s), but %q is a %s", key, want, events(evs), spec.Pattern, spec.Type))
		}
	}
	sort.Strings(errs)
	return errs
}

func match(prefixes []string, key string) (store.KeySpec, bool) {
	for _, p := range prefixes {
		if spec, ok := store.MatchKey(p, key); ok {
			return spec, true
		}
	}
	return store.KeySpec{}, false
}

// typeOfEvents is the type the keyspace events imply: hset, hincrby, ...
// write a hash; zadd, zrem, ... a sorted set; xadd, xtrim a stream; del,
// expire, expired any.
func typeOfEvents(evs map[string]bool) string {
	for ev := range evs {
		switch {
		case strings.HasPrefix(ev, "h"):
			return store.TypeHash
		case strings.HasPrefix(ev, "z"):
			return store.TypeZSet
		case strings.HasPrefix(ev, "x"):
			return store.TypeStream
		}
	}
	return ""
}

func events(evs map[string]bool) string {
	out := make([]string, 0, len(evs))
	for ev := range evs {
		out = append(out, ev)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// patterns returns the schema patterns of the keys recorded so far.
func (r *recorder) patterns(prefixes []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := map[string]bool{}
	for key := range r.written {
		if spec, ok := match(prefixes, key); ok {
			set[spec.Pattern] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
