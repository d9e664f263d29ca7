// Package layers writes down the direction of imports between
// workspaced's packages, and its test enforces it against `go list`.
//
// Every package of the module belongs to exactly one layer. A package may
// import the packages of the layers its own layer lists, and nothing else
// of ours; a new package must be given a layer before it builds in CI.
// docs/development.md explains the layers.
package layers

import (
	"fmt"
	"slices"
	"sort"
)

// Layer is a group of packages with the same import rights.
type Layer string

// The layers, lowest first.
const (
	// Vocabulary: the types every part shares (workspace, commands and
	// events, the agent's wire types, MCP rules) and leaf libraries with no
	// adapter in them (SSE codec, host grammar, the seccomp profile).
	Vocabulary Layer = "vocabulary"
	// Config: the one Config struct, parsed from the environment in cmd.
	Config Layer = "config"
	// Clients: our own wire protocols' clients (agent, proxy admin API),
	// importable by any adapter that speaks them.
	Clients Layer = "clients"
	// Adapters: one external system each (Redis, Watermill, Docker, ECS,
	// S3, the proxy and agent servers). They never import each other.
	Adapters Layer = "adapters"
	// Consumers: workers and handlers. They declare the interfaces they
	// consume; of the adapters they import only store, whose record types
	// (Conversation, Workspace) are the state model they work on.
	Consumers Layer = "consumers"
	// Commands: cmd/*, the only place concrete adapters are wired.
	Commands Layer = "commands"
	// Testing: doubles, harnesses and conformance suites. Never imported
	// by production packages.
	Testing Layer = "testing"
)

// Packages maps each package (relative to the module) to its layer.
var Packages = map[string]Layer{
	"workspace":      Vocabulary,
	"events":         Vocabulary,
	"agent/api":      Vocabulary,
	"proxy/mcprule":  Vocabulary,
	"proxy/egress":   Vocabulary,
	"sse":            Vocabulary,
	"deploy/seccomp": Vocabulary,
	// How every binary reads its environment, and the proxy's env-tagged
	// policy that config embeds and proxy turns into Options (docs/decisions.md D18).
	"config/envconf":    Vocabulary,
	"proxy/proxyconfig": Vocabulary,
	"selftest":          Vocabulary,
	"deploy/apparmor":   Vocabulary,

	"config": Config,

	"agent/client": Clients,
	"proxy/admin":  Clients,

	"store":          Adapters,
	"events/bus":     Adapters,
	"runtime/docker": Adapters,
	"runtime/ecs":    Adapters,
	"files":          Adapters,
	"proxy":          Adapters,
	"agent":          Adapters,

	"workers":  Consumers,
	"handlers": Consumers,

	"cmd/workspaced":         Commands,
	"cmd/workspace-agent":    Commands,
	"cmd/credential-proxy":   Commands,
	"cmd/wsctl":              Commands,
	"cmd/workspace-selftest": Commands,

	"internal/layers":               Testing,
	"internal/benchcmp":             Testing,
	"internal/benchcmp/benchreport": Testing,
	"internal/docscheck":            Testing,
	"internal/iampolicy":            Testing,
	"internal/tfpolicy":             Testing,
	"internal/awsrules":             Testing,
	"internal/testenv":              Testing,
	"internal/redistest":            Testing,
	"store/storetest":               Testing,
	"internal/awstest":              Testing,
	"internal/ecsdouble":            Testing,
	"internal/fakebedrock":          Testing,
	"internal/fakeclaude":           Testing,
	"runtime/runtimetest":           Testing,
	"events/bus/bustest":            Testing,
	"proxy/dockere2e":               Testing,
	"images":                        Testing,
	"localstack":                    Testing,
	"terraform":                     Testing,
}

// Allowed lists, for each layer, the layers its packages may import.
var Allowed = map[Layer][]Layer{
	Vocabulary: {Vocabulary},
	Config:     {Vocabulary},
	Clients:    {Vocabulary},
	Adapters:   {Vocabulary, Clients},
	Consumers:  {Vocabulary, Clients},
	Commands:   {Vocabulary, Config, Clients, Adapters, Consumers},
	Testing:    {Vocabulary, Config, Clients, Adapters, Consumers, Commands, Testing},
}

// Exceptions are single edges allowed across the layers, each with its
// reason.
var Exceptions = map[[2]string]string{
	{"workers", "store"}:  "the store's record types are the state model the workers act on; workers declare interfaces for its behaviour",
	{"handlers", "store"}: "the store's record types are the state model the API serves; handlers declare interfaces for its behaviour",
}

// Check returns one line per package without a layer and per import edge
// the table does not allow. graph maps each package (relative to the
// module mod) to the module's packages it imports.
func Check(mod string, graph map[string][]string) []string {
	var errs []string
	froms := make([]string, 0, len(graph))
	for p := range graph {
		froms = append(froms, p)
	}
	sort.Strings(froms)
	for _, from := range froms {
		fl, ok := Packages[from]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s/%s has no layer: add it to internal/layers.Packages", mod, from))
			continue
		}
		for _, to := range graph[from] {
			tl, ok := Packages[to]
			if !ok || slices.Contains(Allowed[fl], tl) {
				continue // an unlayered target is reported as a package itself
			}
			if _, ok := Exceptions[[2]string{from, to}]; ok {
				continue
			}
			errs = append(errs, fmt.Sprintf("%s imports %s: %s may not import %s", from, to, fl, tl))
		}
	}
	return errs
}
