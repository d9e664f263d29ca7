package api_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/workspaced/workspaced/agent/api"
)

func TestParseEventID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true},
		{"0", 0, true},
		{"1", 1, true},
		{"42", 42, true},
		{"9007199254740991", api.MaxEventID, true},
		{"9007199254740992", 0, false},
		{"99999999999999999999", 0, false},
		{"01", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"١", 0, false},
	}
	for _, tt := range tests {
		got, err := api.ParseEventID(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseEventID(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, api.ErrBadEventID) {
			t.Errorf("ParseEventID(%q) = %d, %v; want ErrBadEventID", tt.in, got, err)
		}
	}
}

// FuzzParseEventID: every accepted id is a canonical decimal in range that
// formats back to its input; everything else is ErrBadEventID.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"", "0", "1", "17", "9007199254740991", "9007199254740992", "01", "-3", " 5", "5\n", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := api.ParseEventID(s)
		if err != nil {
			if !errors.Is(err, api.ErrBadEventID) {
				t.Fatalf("ParseEventID(%q): error %v does not wrap ErrBadEventID", s, err)
			}
			return
		}
		if n < 0 || n > api.MaxEventID {
			t.Fatalf("ParseEventID(%q) = %d, out of range", s, n)
		}
		if s != "" && strconv.FormatInt(n, 10) != s {
			t.Fatalf("ParseEventID(%q) = %d, which is not its canonical form", s, n)
		}
	})
}
