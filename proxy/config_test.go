package proxy

import (
	"reflect"
	"testing"

	"github.com/workspaced/workspaced/proxy/proxyconfig"
)

// The environment's defaults (proxyconfig's envDefault tags, which the docs
// list) are the proxy's own zero-value defaults: an unset variable and an
// unset Options field mean the same thing.
func TestConfigDefaultsAreOptionsDefaults(t *testing.T) {
	t.Parallel()
	s, err := proxyconfig.LoadSidecar(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	fromEnv := SidecarOptions(s)
	var zero Options
	for _, o := range []*Options{&fromEnv, &zero} {
		if err := o.setDefaults(); err != nil {
			t.Fatal(err)
		}
		// Injected dependencies, not configuration.
		o.Logger, o.Metrics, o.Resolver, o.Dial, o.UpstreamTLS, o.Now = nil, nil, nil, nil, nil, nil
	}
	if !reflect.DeepEqual(fromEnv, zero) {
		t.Fatalf("defaults differ:\nenvironment %+v\nOptions{}   %+v", fromEnv, zero)
	}
	// And the tags are not merely zero: they state the defaults.
	if fromEnv.Limits.MaxTunnels != 64 || len(s.Proxy.AllowedPorts) != 2 {
		t.Fatalf("tag defaults missing: %+v", s.Proxy)
	}
}
