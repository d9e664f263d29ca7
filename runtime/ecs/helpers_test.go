package ecs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/runtime/ecs"
)

var testAdminKey = []byte("backend-admin-key")

// fixture is a runtime wired to its own ECS double.
type fixture struct {
	d   *ecsdouble.Double
	rt  *ecs.Runtime
	reg *prometheus.Registry
}

// newFixture starts a simulated double (no Docker) unless dopts says
// otherwise, and a runtime pointed at it.
func newFixture(t *testing.T, dopts ecsdouble.Options, mods ...func(*ecs.Options)) *fixture {
	t.Helper()
	d := ecsdouble.Start(t, dopts)
	f := &fixture{d: d}
	f.rt, f.reg = newRuntime(t, d, mods...)
	return f
}

// newRuntime builds another runtime on the same double (a restarted
// backend replica).
func newRuntime(t *testing.T, d *ecsdouble.Double, mods ...func(*ecs.Options)) (*ecs.Runtime, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := ecs.Options{
		Cluster:         d.ClusterName,
		TaskDefinition:  d.Family,
		Subnets:         []string{"subnet-0a1b2c", "subnet-0d4e5f"},
		SecurityGroups:  []string{"sg-0123abcd"},
		ProxyAdminKey:   testAdminKey,
		Endpoint:        d.URL,
		Registerer:      reg,
		RetryMaxBackoff: 200 * time.Millisecond,
		Logger:          slog.New(slog.DiscardHandler),
	}
	for _, m := range mods {
		m(&opts)
	}
	rt, err := ecs.New(d.AWSConfig(), opts)
	if err != nil {
		t.Fatalf("ecs.New: %v", err)
	}
	return rt, reg
}

func token(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "tok" + hex.EncodeToString(b)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// counter reads a counter (with labels) from the registry; 0 if absent.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
