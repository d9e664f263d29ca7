package envconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

type sample struct {
	Inner struct {
		Wait time.Duration `env:"SAMPLE_WAIT" envDefault:"5s"`
	}
	Hosts List   `env:"SAMPLE_HOSTS"`
	Count int    `env:"SAMPLE_COUNT" envDefault:"3"`
	Token Secret `env:"SAMPLE_TOKEN"`
}

func TestListGrammar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"commas", "a,b,c", []string{"a", "b", "c"}},
		{"commas and spaces", "a, b ,c", []string{"a", "b", "c"}},
		{"spaces only", "a b\tc", []string{"a", "b", "c"}},
		{"newlines", "a\nb\r\nc", []string{"a", "b", "c"}},
		{"empty entries dropped", ",a,,b,", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse[sample](map[string]string{"SAMPLE_HOSTS": tt.in})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Hosts, tt.want) {
				t.Fatalf("Hosts = %q, want %q", s.Hosts, tt.want)
			}
		})
	}
}

func TestParseDefaultsAndErrors(t *testing.T) {
	t.Parallel()
	s, err := Parse[sample](map[string]string{"SAMPLE_COUNT": ""})
	if err != nil || s.Count != 3 || s.Inner.Wait != 5*time.Second {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	_, err = Parse[sample](map[string]string{"SAMPLE_COUNT": "many", "SAMPLE_WAIT": "soon"})
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, key := range []string{"SAMPLE_COUNT", "SAMPLE_WAIT"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	if strings.Contains(err.Error(), "Count") {
		t.Errorf("error %q names the Go field", err)
	}
}

func TestDuplicateFieldNames(t *testing.T) {
	t.Parallel()
	type dup struct {
		A struct {
			Region string `env:"A_REGION"`
		}
		B struct {
			Region string `env:"B_REGION"`
		}
	}
	if got := DuplicateFieldNames[dup](); !slices.Equal(got, []string{"Region"}) {
		t.Fatalf("DuplicateFieldNames = %q", got)
	}
	if got := DuplicateFieldNames[sample](); len(got) != 0 {
		t.Fatalf("DuplicateFieldNames(sample) = %q", got)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s, err := Parse[sample](map[string]string{"SAMPLE_TOKEN": "hunter2"})
	if err != nil || s.Token.Reveal() != "hunter2" {
		t.Fatalf("Reveal = %q, %v", s.Token.Reveal(), err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", s, "token", s.Token)
	j, _ := json.Marshal(s)
	printed := buf.String() + string(j) + fmt.Sprintf("%v %+v %#v %s", s, s, s, s.Token)
	if strings.Contains(printed, "hunter2") {
		t.Fatalf("secret printed: %s", printed)
	}
}

func TestUndocumented(t *testing.T) {
	t.Parallel()
	vars, err := Variables[sample]()
	if err != nil {
		t.Fatal(err)
	}
	got := Undocumented(vars, "`SAMPLE_WAIT` `SAMPLE_HOSTS` SAMPLE_COUNT `SAMPLE_TOKEN`")
	if !slices.Equal(got, []string{"SAMPLE_COUNT"}) {
		t.Fatalf("Undocumented = %q", got)
	}
}

func TestEnviron(t *testing.T) {
	t.Parallel()
	m := Environ([]string{"A=1", "B=x=y", "C=", "junk"})
	if len(m) != 3 || m["A"] != "1" || m["B"] != "x=y" || m["C"] != "" {
		t.Fatalf("Environ = %v", m)
	}
}
