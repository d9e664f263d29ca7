// Package envconf is how every binary of the project reads its environment:
// env-tagged structs parsed by github.com/caarlos0/env, one grammar for
// lists (List), the Secret type, and errors that name the variable an
// operator has to fix rather than the Go field. workspaced (config), the
// credential proxy (proxy/proxyconfig) and the workspace agent (agent) all
// parse through Parse, so a variable means the same thing in each.
//
// It imports nothing of the project, so any configuration type in the tree
// may use it without pulling adapters along.
package envconf

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Parse reads a T from environ (tests pass a map; binaries pass
// Environ(os.Environ())). A variable set to the empty string counts as
// unset: its envDefault applies. Errors name every bad variable.
func Parse[T any](environ map[string]string) (T, error) {
	v, err := env.ParseAsWithOptions[T](env.Options{Environment: environ})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("parse environment: %w", nameVariables(reflect.TypeFor[T](), err))
	}
	return v, nil
}

// Variables lists every variable T reads, with its default, in declaration
// order (for the docs tests).
func Variables[T any]() ([]env.FieldParams, error) {
	var v T
	return env.GetFieldParams(&v)
}

// Undocumented returns the variables of vars that doc does not mention in
// backticks.
func Undocumented(vars []env.FieldParams, doc string) []string {
	var missing []string
	for _, v := range vars {
		if !strings.Contains(doc, "`"+v.Key+"`") {
			missing = append(missing, v.Key)
		}
	}
	return missing
}

// Environ turns os.Environ()'s "KEY=value" list into the map Parse reads.
func Environ(kv []string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, e := range kv {
		if k, v, ok := strings.Cut(e, "="); ok {
			m[k] = v
		}
	}
	return m
}

// nameVariables rewrites the library's per-field parse errors (which name
// the Go field) to name the environment variable instead.
func nameVariables(t reflect.Type, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	keys := map[string][]string{}
	fieldKeys(t, keys)
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && len(keys[pe.Name]) > 0 {
			out = append(out, fmt.Errorf("%s: %w", strings.Join(keys[pe.Name], " or "), pe.Err))
			continue
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// fieldKeys maps each leaf field name under t to its variable(s). A name
// used by two fields maps to both (DuplicateFieldNames finds them).
func fieldKeys(t reflect.Type, m map[string][]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if f.Type.Kind() == reflect.Struct && key == "" {
			fieldKeys(f.Type, m)
			continue
		}
		if key != "" {
			m[f.Name] = append(m[f.Name], key)
		}
	}
}

// DuplicateFieldNames returns the leaf field names of T used by more than
// one variable; errors about such a field name every candidate. Each
// package's tests keep this empty.
func DuplicateFieldNames[T any]() []string {
	keys := map[string][]string{}
	fieldKeys(reflect.TypeFor[T](), keys)
	var dup []string
	for name, k := range keys {
		if len(k) > 1 {
			dup = append(dup, name)
		}
	}
	return dup
}

// List is a list variable. The one grammar of every list the project
// reads: entries separated by commas and/or white space (spaces, tabs,
// newlines); empty entries are dropped, so "a,b", "a, b" and "a b" are the
// same list.
type List []string

// UnmarshalText splits text by the list grammar.
func (l *List) UnmarshalText(text []byte) error {
	*l = Split(string(text))
	return nil
}

// Split splits s by the list grammar (see List).
func Split(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// redacted is what a Secret prints as.
const redacted = "[redacted]"

// Secret is a string that never prints: fmt, slog and JSON show
// "[redacted]". Reveal returns the value for the one place that needs it.
type Secret string

// String hides the value.
func (Secret) String() string { return redacted }

// GoString hides the value from %#v.
func (Secret) GoString() string { return redacted }

// LogValue hides the value from slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON hides the value from JSON encoders (slog's JSON handler).
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Reveal returns the value.
func (s Secret) Reveal() string { return string(s) }
