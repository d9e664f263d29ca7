package docker

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestWatcherExportsItsStats(t *testing.T) {
	t.Parallel()
	w := NewWatcher(nil, WatcherOptions{}, newChanSink())
	w.published.Add(3)
	w.dropped.Add(2)
	w.reconnects.Add(1)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(w); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
	}
	want := map[string]float64{
		"workspaced_docker_watcher_events_published_total": 3,
		"workspaced_docker_watcher_events_dropped_total":   2,
		"workspaced_docker_watcher_reconnects_total":       1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
