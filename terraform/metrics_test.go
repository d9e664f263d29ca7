package terraform_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The metrics pipeline (docs/deploy.md, "Metrics"): the backend's Prometheus
// metrics (Go source) -> the CloudWatch agent sidecar's scrape and
// metric_declaration (services module templates) -> the alarms and the
// dashboard (monitoring module). These tests keep the three in agreement,
// without AWS: every alarm metric is declared with the dimensions the alarm
// uses, every declared metric exists in the Go code with those labels.

// goMetric is a Prometheus collector the Go code creates.
type goMetric struct {
	kind   string   // Counter, Gauge, Histogram, Summary, or Desc (prometheus.NewDesc)
	labels []string // variable labels
	dir    string   // package directory
	pos    string
}

// goSource is what the tests need from the repository's Go code.
type goSource struct {
	metrics map[string]goMetric
	strings map[string]map[string]bool // package directory -> string literals
}

var constructorKind = regexp.MustCompile(`^New(Counter|Gauge|Histogram|Summary)(Vec)?$`)

// loadGoSource parses every non-test .go file of the repository (outside
// terraform/) and collects the metrics created with prometheus.New*(Opts{...})
// (Namespace, Subsystem, Name joined like prometheus.BuildFQName) and
// prometheus.NewDesc, and each package's string literals.
func loadGoSource(t testing.TB) goSource {
	t.Helper()
	src := goSource{metrics: map[string]goMetric{}, strings: map[string]map[string]bool{}}
	root := repoRoot(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "terraform" || name == "vendor" || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			// Someone may be editing it; a metric defined there shows up
			// as missing below, with this as the reason.
			t.Logf("parse %s: %v", rel(t, path), err)
			return nil
		}
		dir := filepath.Dir(path)
		if src.strings[dir] == nil {
			src.strings[dir] = map[string]bool{}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					if s, err := strconv.Unquote(n.Value); err == nil {
						src.strings[dir][s] = true
					}
				}
			case *ast.CallExpr:
				name, kind, labels, ok := metricFromCall(n)
				if ok {
					src.metrics[name] = goMetric{kind: kind, labels: labels, dir: dir, pos: rel(t, fset.Position(n.Pos()).String())}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(src.metrics) == 0 {
		t.Fatal("found no Prometheus metrics in the Go source")
	}
	return src
}

func metricFromCall(call *ast.CallExpr) (name, kind string, labels []string, ok bool) {
	sel, isSel := call.Fun.(*ast.SelectorExpr)
	if !isSel {
		return "", "", nil, false
	}
	if pkg, isIdent := sel.X.(*ast.Ident); !isIdent || pkg.Name != "prometheus" {
		return "", "", nil, false
	}
	if sel.Sel.Name == "NewDesc" && len(call.Args) >= 3 {
		name, ok = stringLit(call.Args[0])
		return name, "Desc", stringList(call.Args[2]), ok
	}
	m := constructorKind.FindStringSubmatch(sel.Sel.Name)
	if m == nil || len(call.Args) == 0 {
		return "", "", nil, false
	}
	opts, isLit := call.Args[0].(*ast.CompositeLit)
	if !isLit {
		return "", "", nil, false
	}
	parts := map[string]string{}
	for _, e := range opts.Elts {
		kv, isKV := e.(*ast.KeyValueExpr)
		if !isKV {
			continue
		}
		key, isIdent := kv.Key.(*ast.Ident)
		if !isIdent {
			continue
		}
		if s, isStr := stringLit(kv.Value); isStr {
			parts[key.Name] = s
		}
	}
	if parts["Name"] == "" {
		return "", "", nil, false
	}
	var fq []string
	for _, p := range []string{parts["Namespace"], parts["Subsystem"], parts["Name"]} {
		if p != "" {
			fq = append(fq, p)
		}
	}
	if m[2] == "Vec" && len(call.Args) > 1 {
		labels = stringList(call.Args[1])
	}
	return strings.Join(fq, "_"), m[1], labels, true
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func stringList(e ast.Expr) []string {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range lit.Elts {
		if s, ok := stringLit(el); ok {
			out = append(out, s)
		}
	}
	return out
}

// --- the CloudWatch agent's configuration ------------------------------------

type metricDeclaration struct {
	SourceLabels    []string   `json:"source_labels"`
	LabelMatcher    string     `json:"label_matcher"`
	LabelSeparator  string     `json:"label_separator"`
	Dimensions      [][]string `json:"dimensions"`
	MetricSelectors []string   `json:"metric_selectors"`
}

type agentConfig struct {
	Agent struct {
		Region string `json:"region"`
	} `json:"agent"`
	Logs struct {
		MetricsCollected struct {
			Prometheus *struct {
				ClusterName          string `json:"cluster_name"`
				LogGroupName         string `json:"log_group_name"`
				PrometheusConfigPath string `json:"prometheus_config_path"`
				EMFProcessor         struct {
					MetricNamespace   string              `json:"metric_namespace"`
					MetricDeclaration []metricDeclaration `json:"metric_declaration"`
				} `json:"emf_processor"`
			} `json:"prometheus"`
		} `json:"metrics_collected"`
	} `json:"logs"`
}

type scrapeConfig struct {
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		MetricsPath   string `json:"metrics_path"`
		StaticConfigs []struct {
			Targets []string          `json:"targets"`
			Labels  map[string]string `json:"labels"`
		} `json:"static_configs"`
		MetricRelabelConfigs []struct {
			SourceLabels []string `json:"source_labels"`
			Regex        string   `json:"regex"`
			Action       string   `json:"action"`
		} `json:"metric_relabel_configs"`
	} `json:"scrape_configs"`
}

// metricsPipeline is the rendered agent configuration with the values the
// services module passes.
type metricsPipeline struct {
	agent        agentConfig
	scrape       scrapeConfig
	job          string
	staticLabels map[string]string
	keep         *regexp.Regexp // metric_relabel_configs keep on __name__, if any
}

// templateArgs returns the keys the services module passes to
// templatefile(".../templates/<name>", {...}), each with an example value,
// and the source of each value.
func templateArgs(t testing.TB, files []tfFile, name string) map[string]string {
	t.Helper()
	var found map[string]string
	for _, f := range files {
		for _, b := range f.body.Blocks {
			if b.Type != "locals" {
				continue
			}
			for _, a := range b.Body.Attributes {
				hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
					call, ok := n.(*hclsyntax.FunctionCallExpr)
					if !ok || call.Name != "templatefile" || len(call.Args) != 2 {
						return nil
					}
					if !strings.HasSuffix(strings.Trim(exprSource(files, call.Args[0]), `"`), "/templates/"+name) {
						return nil
					}
					obj, ok := call.Args[1].(*hclsyntax.ObjectConsExpr)
					if !ok {
						t.Errorf("templatefile(%s) vars are not an object literal", name)
						return nil
					}
					found = map[string]string{}
					for _, item := range obj.Items {
						found[strings.Trim(exprSource(files, item.KeyExpr), `"`)] = exprSource(files, item.ValueExpr)
					}
					return nil
				})
			}
		}
	}
	if found == nil {
		t.Fatalf("services module: no templatefile(.../templates/%s, {...}) in its locals", name)
	}
	return found
}

var exampleValues = map[string]string{
	"aws_region":        "ap-northeast-1",
	"cluster_name":      "workspaced-staging",
	"log_group_name":    "/ecs/workspaced-staging/metrics",
	"metrics_namespace": "Workspaced",
	"scrape_job":        "workspaced-backend",
	"backend_port":      "8000",
	"environment":       "staging",
}

func loadMetricsPipeline(t testing.TB) metricsPipeline {
	t.Helper()
	dir := filepath.Join(modulesDir(t), "services")
	files := moduleFiles(t, dir)
	var p metricsPipeline
	for _, tc := range []struct {
		name string
		into any
	}{
		{"cloudwatch-agent.json.tftpl", &p.agent},
		{"prometheus-scrape.json.tftpl", &p.scrape},
	} {
		args := templateArgs(t, files, tc.name)
		vars := map[string]string{}
		for k := range args {
			v, ok := exampleValues[k]
			if !ok {
				t.Fatalf("no example value for template variable %s of %s", k, tc.name)
			}
			vars[k] = v
		}
		path := filepath.Join(dir, "templates", tc.name)
		for _, v := range templateVars(t, path) {
			if _, ok := args[v]; !ok {
				t.Errorf("%s uses ${%s}, which the services module does not pass", tc.name, v)
			}
		}
		out, err := render(path, vars)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, tc.into); err != nil {
			t.Fatalf("%s does not render to JSON: %v", tc.name, err)
		}
	}
	if len(p.scrape.ScrapeConfigs) != 1 {
		t.Fatalf("want one scrape job, got %d", len(p.scrape.ScrapeConfigs))
	}
	job := p.scrape.ScrapeConfigs[0]
	p.job = job.JobName
	p.staticLabels = map[string]string{}
	for _, sc := range job.StaticConfigs {
		for k, v := range sc.Labels {
			p.staticLabels[k] = v
		}
	}
	for _, rc := range job.MetricRelabelConfigs {
		if rc.Action == "keep" && slices.Equal(rc.SourceLabels, []string{"__name__"}) {
			p.keep = regexp.MustCompile("^(?:" + rc.Regex + ")$")
		}
	}
	return p
}

var exactSelector = regexp.MustCompile(`^\^([a-zA-Z_:][a-zA-Z0-9_:]*)\$$`)

// TestCloudWatchAgentScrapesTheBackend checks the sidecar's configuration
// against the backend task: it reads the Prometheus configuration from the
// environment, scrapes the backend's /metrics on its own port over
// localhost, labels every metric with Environment, and writes EMF into the
// metrics log group and namespace.
func TestCloudWatchAgentScrapesTheBackend(t *testing.T) {
	t.Parallel()
	p := loadMetricsPipeline(t)
	prom := p.agent.Logs.MetricsCollected.Prometheus
	if prom == nil {
		t.Fatal("agent configuration has no logs.metrics_collected.prometheus")
	}
	if prom.PrometheusConfigPath != "env:PROMETHEUS_CONFIG_CONTENT" {
		t.Errorf("prometheus_config_path = %q, want env:PROMETHEUS_CONFIG_CONTENT", prom.PrometheusConfigPath)
	}
	for field, got := range map[string]string{
		"agent.region":     p.agent.Agent.Region,
		"log_group_name":   prom.LogGroupName,
		"metric_namespace": prom.EMFProcessor.MetricNamespace,
		"cluster_name":     prom.ClusterName,
	} {
		if got == "" || !slices.Contains(mapsValues(exampleValues), got) {
			t.Errorf("%s = %q: want it from a template variable", field, got)
		}
	}
	job := p.scrape.ScrapeConfigs[0]
	if job.MetricsPath != "/metrics" {
		t.Errorf("metrics_path = %q, want /metrics (handlers serve it there)", job.MetricsPath)
	}
	if len(job.StaticConfigs) != 1 || !slices.Equal(job.StaticConfigs[0].Targets, []string{"localhost:" + exampleValues["backend_port"]}) {
		t.Errorf("scrape targets %+v, want localhost:<backend port>", job.StaticConfigs)
	}
	if p.staticLabels["Environment"] != exampleValues["environment"] {
		t.Errorf("scrape labels %v: want Environment = the environment", p.staticLabels)
	}

	services := moduleFiles(t, filepath.Join(modulesDir(t), "services"))
	if got := templateArgs(t, services, "prometheus-scrape.json.tftpl")["backend_port"]; got != "local.backend_port" {
		t.Errorf("prometheus-scrape backend_port = %s, want local.backend_port", got)
	}
	agent, ok := locals(services)["cloudwatch_agent_container"].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("services: local.cloudwatch_agent_container is not an object")
	}
	attrs := map[string]string{}
	for _, item := range agent.Items {
		attrs[strings.Trim(exprSource(services, item.KeyExpr), `"`)] = strings.Join(strings.Fields(exprSource(services, item.ValueExpr)), " ")
	}
	if attrs["essential"] != "false" {
		t.Errorf("the agent sidecar must not be essential (a metrics failure must not stop the API), essential = %s", attrs["essential"])
	}
	for _, want := range []string{`name = "CW_CONFIG_CONTENT", value = local.cloudwatch_agent_config`, `name = "PROMETHEUS_CONFIG_CONTENT", value = local.prometheus_scrape_config`} {
		if !strings.Contains(attrs["environment"], want) {
			t.Errorf("agent sidecar environment lacks { %s }", want)
		}
	}
	td := blocks(services, "resource", "aws_ecs_task_definition", "backend")
	if len(td) != 1 || !strings.Contains(exprSource(services, td[0].Body.Attributes["container_definitions"].Expr), "local.cloudwatch_agent_container") {
		t.Error("the backend task definition does not run local.cloudwatch_agent_container")
	}
}

// TestMetricDeclarationsMatchGoSource: every metric the agent declares is a
// Prometheus metric of the Go code (selected by an exact ^name$), survives the
// scrape's keep filter, is not a histogram (the agent drops those), and has
// every label used as a dimension or source label.
func TestMetricDeclarationsMatchGoSource(t *testing.T) {
	t.Parallel()
	p := loadMetricsPipeline(t)
	src := loadGoSource(t)
	decls := p.agent.Logs.MetricsCollected.Prometheus.EMFProcessor.MetricDeclaration
	if len(decls) == 0 {
		t.Fatal("no metric_declaration")
	}
	scrapeLabels := []string{"job", "instance"}
	for k := range p.staticLabels {
		scrapeLabels = append(scrapeLabels, k)
	}
	for i, d := range decls {
		re, err := regexp.Compile(d.LabelMatcher)
		if err != nil {
			t.Errorf("metric_declaration[%d]: label_matcher: %v", i, err)
		}
		if len(d.SourceLabels) == 0 || len(d.Dimensions) == 0 || len(d.MetricSelectors) == 0 {
			t.Errorf("metric_declaration[%d] needs source_labels, dimensions and metric_selectors", i)
			continue
		}
		// The matcher must accept this job when it only looks at scrape labels.
		if re != nil && !slices.ContainsFunc(d.SourceLabels, func(l string) bool { return !slices.Contains(scrapeLabels, l) }) {
			var vals []string
			for _, l := range d.SourceLabels {
				vals = append(vals, map[string]string{"job": p.job, "instance": "localhost:" + exampleValues["backend_port"]}[l]+p.staticLabels[l])
			}
			sep := d.LabelSeparator
			if sep == "" {
				sep = ";"
			}
			if !re.MatchString(strings.Join(vals, sep)) {
				t.Errorf("metric_declaration[%d]: label_matcher %q rejects the scrape job's %v", i, d.LabelMatcher, vals)
			}
		}
		for _, dims := range d.Dimensions {
			if !slices.Contains(dims, "Environment") {
				t.Errorf("metric_declaration[%d]: dimension set %v lacks Environment (the alarms select one environment)", i, dims)
			}
		}
		for _, sel := range d.MetricSelectors {
			m := exactSelector.FindStringSubmatch(sel)
			if m == nil {
				t.Errorf("metric_declaration[%d]: selector %q: use ^name$ so each selected metric is known", i, sel)
				continue
			}
			name := m[1]
			gm, ok := src.metrics[name]
			if !ok {
				t.Errorf("metric_declaration[%d]: %s is not a Prometheus metric of the Go code (Name:/NewDesc)", i, name)
				continue
			}
			if gm.kind == "Histogram" {
				t.Errorf("metric_declaration[%d]: %s is a histogram (%s): the CloudWatch agent drops histograms", i, name, gm.pos)
			}
			if p.keep != nil && !p.keep.MatchString(name) {
				t.Errorf("metric_declaration[%d]: %s is dropped by the scrape's metric_relabel_configs", i, name)
			}
			var used []string
			for _, dims := range d.Dimensions {
				used = append(used, dims...)
			}
			used = append(used, d.SourceLabels...)
			for _, l := range used {
				if !slices.Contains(scrapeLabels, l) && !slices.Contains(gm.labels, l) {
					t.Errorf("metric_declaration[%d]: %s has no label %q (labels %v, %s)", i, name, l, gm.labels, gm.pos)
				}
			}
		}
	}
}

// customMetricUse is one reference to a metric in var.metrics_namespace.
type customMetricUse struct {
	where  string
	metric string
	dims   map[string]string // dimension -> literal value ("" when not a literal)
}

// alarmMetricUses collects the custom metrics the monitoring module's alarms
// reference: the alarm's own metric or its metric_query metrics.
func alarmMetricUses(t testing.TB, files []tfFile) []customMetricUse {
	t.Helper()
	var uses []customMetricUse
	var visit func(b *hclsyntax.Block, name string)
	visit = func(b *hclsyntax.Block, name string) {
		if ns, ok := b.Body.Attributes["namespace"]; ok && exprSource(files, ns.Expr) == "var.metrics_namespace" {
			u := customMetricUse{where: name, dims: map[string]string{}}
			if mn, ok := b.Body.Attributes["metric_name"]; ok {
				u.metric = strings.Trim(exprSource(files, mn.Expr), `"`)
			}
			if d, ok := b.Body.Attributes["dimensions"]; ok {
				obj, isObj := resolveLocal(files, d.Expr).(*hclsyntax.ObjectConsExpr)
				if !isObj {
					t.Errorf("%s: dimensions must be an object literal or a local holding one", name)
				} else {
					for _, item := range obj.Items {
						v := exprSource(files, item.ValueExpr)
						if !strings.HasPrefix(v, `"`) {
							v = ""
						}
						u.dims[strings.Trim(exprSource(files, item.KeyExpr), `"`)] = strings.Trim(v, `"`)
					}
				}
			}
			uses = append(uses, u)
		}
		for _, nb := range b.Body.Blocks {
			visit(nb, name)
		}
	}
	for _, b := range blocks(files, "resource", "aws_cloudwatch_metric_alarm") {
		visit(b, "aws_cloudwatch_metric_alarm."+b.Labels[1])
	}
	return uses
}

// dashboardMetricUses collects [var.metrics_namespace, "name", "dim", value,
// ...] rows of the dashboard.
func dashboardMetricUses(files []tfFile) []customMetricUse {
	var uses []customMetricUse
	for _, f := range files {
		hclsyntax.VisitAll(f.body, func(n hclsyntax.Node) hcl.Diagnostics {
			tup, ok := n.(*hclsyntax.TupleConsExpr)
			if !ok || len(tup.Exprs) < 2 || exprSource(files, tup.Exprs[0]) != "var.metrics_namespace" {
				return nil
			}
			u := customMetricUse{where: tup.Range().String(), metric: strings.Trim(exprSource(files, tup.Exprs[1]), `"`), dims: map[string]string{}}
			rest := tup.Exprs[2:]
			for i := 0; i+1 < len(rest); i += 2 {
				if _, isObj := rest[i].(*hclsyntax.ObjectConsExpr); isObj {
					break
				}
				v := exprSource(files, rest[i+1])
				if !strings.HasPrefix(v, `"`) {
					v = ""
				}
				u.dims[strings.Trim(exprSource(files, rest[i]), `"`)] = strings.Trim(v, `"`)
			}
			uses = append(uses, u)
			return nil
		})
	}
	return uses
}

// TestAlarmsUseDeclaredMetrics: every metric an alarm (or the dashboard)
// takes from var.metrics_namespace is one the agent publishes, with exactly
// one of its declared dimension sets, and every literal dimension value is a
// label value the Go code uses (a string literal of the metric's package).
func TestAlarmsUseDeclaredMetrics(t *testing.T) {
	t.Parallel()
	p := loadMetricsPipeline(t)
	src := loadGoSource(t)
	decls := p.agent.Logs.MetricsCollected.Prometheus.EMFProcessor.MetricDeclaration
	declared := map[string][][]string{} // metric -> dimension sets
	for _, d := range decls {
		for _, sel := range d.MetricSelectors {
			if m := exactSelector.FindStringSubmatch(sel); m != nil {
				declared[m[1]] = append(declared[m[1]], d.Dimensions...)
			}
		}
	}
	files := moduleFiles(t, filepath.Join(modulesDir(t), "monitoring"))
	alarms := alarmMetricUses(t, files)
	if len(alarms) < 5 {
		t.Fatalf("found %d alarm metrics in var.metrics_namespace, want the backend's alarms (RunTask failures, warm pool, poisoned, provisioning, repairs)", len(alarms))
	}
	for _, u := range append(alarms, dashboardMetricUses(files)...) {
		sets, ok := declared[u.metric]
		if !ok {
			t.Errorf("%s: %s is not in the agent's metric_declaration: nothing publishes it", u.where, u.metric)
			continue
		}
		keys := sortedKeys(u.dims)
		if !slices.ContainsFunc(sets, func(s []string) bool {
			s = slices.Clone(s)
			sort.Strings(s)
			return slices.Equal(s, keys)
		}) {
			t.Errorf("%s: %s with dimensions %v, but the agent publishes it with %v only", u.where, u.metric, keys, sets)
		}
		gm, ok := src.metrics[u.metric]
		if !ok {
			continue // TestMetricDeclarationsMatchGoSource reports it
		}
		for k, v := range u.dims {
			if v == "" || p.staticLabels[k] != "" {
				continue
			}
			if !src.strings[gm.dir][v] {
				t.Errorf("%s: %s{%s=%q}: the Go package %s never uses %q", u.where, u.metric, k, v, rel(t, gm.dir), v)
			}
		}
	}
}

// TestMetricsWiring: the stack gives the agent (services) and the alarms
// (monitoring) the same namespace and environment, and the backend task role
// may write the metrics log group, without cloudwatch:PutMetricData.
func TestMetricsWiring(t *testing.T) {
	t.Parallel()
	files := moduleFiles(t, stackDir(t))
	for _, mod := range []string{"services", "monitoring"} {
		calls := blocks(files, "module", mod)
		if len(calls) != 1 {
			t.Fatalf("stack: want one module %q", mod)
		}
		for attr, want := range map[string]string{"metrics_namespace": "var.metrics_namespace", "environment": "var.environment"} {
			a, ok := calls[0].Body.Attributes[attr]
			if !ok || exprSource(files, a.Expr) != want {
				t.Errorf("stack: module %q must pass %s = %s", mod, attr, want)
			}
		}
	}
	sec := moduleFiles(t, filepath.Join(modulesDir(t), "security"))
	doc := blocks(sec, "data", "aws_iam_policy_document", "backend")
	if len(doc) != 1 {
		t.Fatal("security: no aws_iam_policy_document.backend")
	}
	body := string(doc[0].Range().SliceBytes(fileSrc(sec, doc[0].Range().Filename)))
	for _, want := range []string{`"logs:PutLogEvents"`, `"${var.metrics_log_group_arn}:log-stream:*"`} {
		if !strings.Contains(body, want) {
			t.Errorf("backend task role lacks %s (the agent sidecar writes the metrics log group)", want)
		}
	}
	if strings.Contains(body, `"cloudwatch:PutMetricData"`) {
		t.Error("backend task role grants cloudwatch:PutMetricData: metrics go through EMF logs, nothing calls it")
	}
}

func mapsValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
