package store

import (
	"context"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/redistest"
)

// TestKeyPatterns: patterns are literal text in Lua-safe characters and
// named parameters, unique, with unique helper names.
func TestKeyPatterns(t *testing.T) {
	t.Parallel()
	lit := regexp.MustCompile(`^[a-z_:]+$`)
	seen := map[string]bool{}
	for _, spec := range Schema() {
		if seen[spec.Pattern] || seen["lua "+spec.Lua] {
			t.Errorf("%q or helper %q appears twice", spec.Pattern, spec.Lua)
		}
		seen[spec.Pattern], seen["lua "+spec.Lua] = true, true
		for _, s := range segments(spec.Pattern) {
			if !lit.MatchString(s.text) {
				t.Errorf("%q: segment %q must be [a-z_:]+", spec.Pattern, s.text)
			}
		}
		if !lit.MatchString(spec.Lua) {
			t.Errorf("%q: helper name %q must be [a-z_]+", spec.Pattern, spec.Lua)
		}
		switch spec.Type {
		case TypeHash, TypeZSet, TypeStream, TypeChannel:
		default:
			t.Errorf("%q: unknown type %q", spec.Pattern, spec.Type)
		}
	}
}

func TestMatchKey(t *testing.T) {
	t.Parallel()
	arn := "arn:aws:ecs:eu-west-1:123456789012:task/cluster/0123abcd"
	tests := []struct {
		name, key, want string
		ok              bool
	}{
		{"conversation", "p:conv:c1", patConv, true},
		{"conversation channel", "p:conv:c1:events", patConvEvents, true},
		{"workspace with colons", "p:ws:" + arn, patWorkspace, true},
		{"streams with colons", "p:streams:" + arn, patStreams, true},
		{"fixed key", "p:pool:available", patPoolAvailable, true},
		{"lock", "p:lock:provision:c1", patProvisionLock, true},
		{"empty parameter", "p:conv:", "", false},
		{"other prefix", "q:conv:c1", "", false},
		{"unknown key", "p:convs:c1", "", false},
		{"fixed key with a suffix", "p:lastuse:x", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec, ok := MatchKey("p:", tc.key)
			if ok != tc.ok || spec.Pattern != tc.want {
				t.Errorf("MatchKey(%q) = %q, %v; want %q, %v", tc.key, spec.Pattern, ok, tc.want, tc.ok)
			}
			if ok {
				if got, ok := MatchKey("p:", Key("p:", spec.Pattern, params(spec.Pattern, "x:y")...)); !ok || got != spec {
					t.Errorf("a key built from %q matches %q", spec.Pattern, got.Pattern)
				}
			}
		})
	}
}

// params returns one value v per parameter of pattern.
func params(pattern, v string) []string {
	var out []string
	for _, s := range segments(pattern) {
		if s.param {
			out = append(out, v)
		}
	}
	return out
}

// TestScriptsNameKeysThroughSchema: no script builds a key from the prefix
// or a literal; they use KEYS[] and the generated key_* helpers, and every
// helper they call exists.
func TestScriptsNameKeysThroughSchema(t *testing.T) {
	t.Parallel()
	helpers := map[string]bool{}
	for _, spec := range Schema() {
		helpers["key_"+spec.Lua] = true
	}
	var literals []string
	for _, spec := range Schema() {
		for _, s := range segments(spec.Pattern) {
			if !s.param {
				literals = append(literals, s.text)
			}
		}
	}
	prefixUse := regexp.MustCompile(`\bP\s*\.\.|ARGV\[1\]`)
	quoted := regexp.MustCompile(`'([^']*)'|"([^"]*)"`)
	call := regexp.MustCompile(`\bkey_\w+`)
	files, err := fs.Glob(luaFS, "lua/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := luaFS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(line, "--")
			if f == "lua/prelude.lua" && strings.TrimSpace(code) == "local P = ARGV[1]" {
				continue
			}
			if prefixUse.MatchString(code) {
				t.Errorf("%s:%d builds a key from the prefix: %s", f, i+1, line)
			}
			for _, m := range quoted.FindAllStringSubmatch(code, -1) {
				s := m[1] + m[2]
				for _, l := range literals {
					if strings.HasPrefix(s, l) || (strings.Contains(l, ":") && strings.Contains(s, l)) {
						t.Errorf("%s:%d names a key by a literal (%q): %s", f, i+1, s, line)
					}
				}
			}
			for _, h := range call.FindAllString(code, -1) {
				if !helpers[h] {
					t.Errorf("%s:%d calls %s, which the schema does not generate", f, i+1, h)
				}
			}
		}
	}
}

// TestLuaKeyHelpersMatchGo runs every generated helper in Redis and
// compares its key with the one Go builds.
func TestLuaKeyHelpersMatchGo(t *testing.T) {
	t.Parallel()
	rdb := redistest.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := scriptSource("touch") // any script: the prelude is what counts
	if err != nil {
		t.Fatal(err)
	}
	prelude, _, _ := strings.Cut(src, "-- Touch.")
	for _, spec := range Schema() {
		args := params(spec.Pattern, "a:b")
		lua := prelude + "return key_" + spec.Lua + "(" + strings.TrimSuffix(strings.Repeat("'a:b', ", len(args)), ", ") + ")"
		got, err := rdb.Eval(ctx, lua, nil, "{pfx}:", "0").Text()
		if err != nil {
			t.Fatalf("%s: %v", spec.Pattern, err)
		}
		if want := Key("{pfx}:", spec.Pattern, args...); got != want {
			t.Errorf("key_%s = %q, Go builds %q", spec.Lua, got, want)
		}
	}
}
