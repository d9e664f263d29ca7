package ecsdouble

import (
	"regexp"
	"strings"
)

// ECS's documented limits on what RunTask and TagResource accept, as the
// API reference states them (RunTask: clientToken, startedBy, tags; the
// Tag shape: "the following basic restrictions apply to tags"). A request
// over a limit is an InvalidParameterException and changes nothing.
const (
	// maxTagsPerResource: "Maximum number of tags per resource - 50"; tags
	// with the aws: prefix (ECS-managed ones) do not count.
	maxTagsPerResource = 50
	// maxTagKey, maxTagValue: "Maximum key length - 128 Unicode characters
	// in UTF-8", "Maximum value length - 256 Unicode characters in UTF-8".
	maxTagKey   = 128
	maxTagValue = 256
	// maxClientToken: "Up to 64 characters are allowed. The valid
	// characters are characters in the range of 33-126, inclusive."
	maxClientToken = 64
)

var (
	// startedByRE: "Up to 128 letters (uppercase and lowercase), numbers,
	// hyphens (-), forward slash (/), and underscores (_) are allowed."
	startedByRE = regexp.MustCompile(`^[A-Za-z0-9_/-]{1,128}$`)
	// tagCharsRE: "letters, numbers, and spaces representable in UTF-8,
	// and the following characters: + - = . _ : / @" (the Tag shape's
	// pattern in the API model).
	tagCharsRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

func validateClientToken(tok string) error {
	if len(tok) > maxClientToken {
		return invalidParam("clientToken must be at most %d characters (got %d).", maxClientToken, len(tok))
	}
	for _, c := range tok {
		if c < 33 || c > 126 {
			return invalidParam("clientToken must be ASCII 33-126.")
		}
	}
	return nil
}

func validateStartedBy(s string) error {
	if s != "" && !startedByRE.MatchString(s) {
		return invalidParam("startedBy must be up to 128 letters, numbers, hyphens, forward slashes and underscores.")
	}
	return nil
}

// reservedPrefix reports whether s starts with aws: in any case ("Do not
// use aws:, AWS:, or any upper or lowercase combination of such as a
// prefix for either keys or values").
func reservedPrefix(s string) bool {
	return len(s) >= 4 && strings.EqualFold(s[:4], "aws:")
}

// validateTags checks the tags of one request: at most 50, keys 1-128 and
// values 0-256 Unicode characters of the allowed set, no aws: prefix on
// either, no key twice.
func validateTags(tags []tag) error {
	if len(tags) > maxTagsPerResource {
		return invalidParam("a resource can have at most %d tags (got %d).", maxTagsPerResource, len(tags))
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if k := len([]rune(t.Key)); k == 0 || k > maxTagKey {
			return invalidParam("tag key must be 1-%d characters (got %d).", maxTagKey, k)
		}
		if v := len([]rune(t.Value)); v > maxTagValue {
			return invalidParam("tag value of %q must be at most %d characters (got %d).", t.Key, maxTagValue, v)
		}
		if reservedPrefix(t.Key) || reservedPrefix(t.Value) {
			return invalidParam("tag keys and values may not start with aws: (reserved for AWS use).")
		}
		if !tagCharsRE.MatchString(t.Key) || !tagCharsRE.MatchString(t.Value) {
			return invalidParam("tag %q has characters other than letters, numbers, spaces and _ . : / = + - @.", t.Key)
		}
		if seen[t.Key] {
			return invalidParam("duplicate tag key %q.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// mergeTags returns have with add applied: a key present is given the new
// value, a new key is appended (TagResource).
func mergeTags(have, add []tag) []tag {
	out := append([]tag(nil), have...)
	for _, nt := range add {
		replaced := false
		for i := range out {
			if out[i].Key == nt.Key {
				out[i].Value, replaced = nt.Value, true
			}
		}
		if !replaced {
			out = append(out, nt)
		}
	}
	return out
}

// countUserTags counts the tags that count against the per-resource limit:
// those without the aws: prefix.
func countUserTags(tags []tag) int {
	n := 0
	for _, t := range tags {
		if !reservedPrefix(t.Key) {
			n++
		}
	}
	return n
}

// SetAgentConnected says whether the container instance's ECS agent is
// connected. While it is not, RunTask returns an AGENT failure and starts
// nothing, as ECS does ("the container instance that you attempted to
// launch a task onto has an agent that's currently disconnected"); the
// agent disconnects and reconnects several times an hour in normal
// operation.
func (d *Double) SetAgentConnected(connected bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.agentDown = !connected
}
