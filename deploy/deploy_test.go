package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rsgate/rsgate/mapping"
)

// object is one decoded Kubernetes object.
type object map[string]any

func (o object) get(path ...string) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (o object) str(path ...string) string {
	s, _ := o.get(path...).(string)
	return s
}

// load decodes every YAML document of every manifest, keyed by "Kind/name".
func load(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]object{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var m map[string]any // not object: yaml.v3 would give nested mappings that type too
			err := dec.Decode(&m)
			o := object(m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if o == nil {
				continue
			}
			kind, name := o.str("kind"), o.str("metadata", "name")
			if o.str("apiVersion") == "" || kind == "" || (name == "" && kind != "Kustomization") {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", f, i)
			}
			out[kind+"/"+name] = o
		}
	}
	return out
}

func TestManifests(t *testing.T) {
	objs := load(t)
	for _, want := range []string{"Deployment/rsgate", "Service/rsgate", "Service/rsgate-admin", "ConfigMap/rsgate-config", "Service/users", "Kustomization/"} {
		if objs[want] == nil {
			t.Errorf("missing %s", want)
		}
	}
	d := objs["Deployment/rsgate"]
	if d == nil {
		t.FailNow()
	}
	containers, _ := d.get("spec", "template", "spec", "containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("containers: %v", containers)
	}
	c := object(containers[0].(map[string]any))
	if c.str("image") != "rsgate:latest" {
		t.Errorf("image %q", c.str("image"))
	}
	ports := map[string]int{}
	for _, p := range c.get("ports").([]any) {
		pm := p.(map[string]any)
		ports[pm["name"].(string)] = pm["containerPort"].(int)
	}
	if ports["http"] != 8080 || ports["admin"] != 9901 {
		t.Errorf("ports %v", ports)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if c.str(probe, "httpGet", "path") != path || c.get(probe, "httpGet", "port") != "admin" {
			t.Errorf("%s: %v", probe, c.get(probe))
		}
	}
	for _, r := range []string{"requests", "limits"} {
		if c.str("resources", r, "cpu") == "" || c.str("resources", r, "memory") == "" {
			t.Errorf("resources.%s: %v", r, c.get("resources", r))
		}
	}
	if c.get("securityContext", "runAsNonRoot") != true || c.get("securityContext", "readOnlyRootFilesystem") != true ||
		d.get("spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
		t.Errorf("securityContext: container %v pod %v", c.get("securityContext"), d.get("spec", "template", "spec", "securityContext"))
	}
	sel := d.get("spec", "selector", "matchLabels", "app.kubernetes.io/name")
	for _, svc := range []string{"Service/rsgate", "Service/rsgate-admin"} {
		if s := objs[svc]; s == nil || s.get("spec", "selector", "app.kubernetes.io/name") != sel {
			t.Errorf("%s does not select the Deployment's pods", svc)
		}
	}
	if objs["Service/users"].str("spec", "clusterIP") != "None" {
		t.Error("the backend example Service is not headless")
	}
	if objs["ConfigMap/rsgate-config"].str("data", "config.yaml") == "" {
		t.Error("ConfigMap has no config.yaml")
	}
	k := objs["Kustomization/"]
	res, _ := k.get("resources").([]any)
	for _, r := range res {
		if _, err := os.Stat(r.(string)); err != nil {
			t.Errorf("kustomization resource %v: %v", r, err)
		}
	}
}

// configMapConfig writes the ConfigMap's config.yaml to a temporary file and returns its path.
func configMapConfig(t *testing.T) (string, []byte) {
	t.Helper()
	cfg := load(t)["ConfigMap/rsgate-config"].str("data", "config.yaml")
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, []byte(cfg)
}

func TestConfigMapConfig(t *testing.T) {
	path, data := configMapConfig(t)
	cfg, err := mapping.Parse(data, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mapping.Compile(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Admin != "0.0.0.0:9901" || cfg.Listen != ":8080" {
		t.Errorf("listen %q admin %q: the pod's probes need admin on 0.0.0.0:9901", cfg.Listen, cfg.Admin)
	}
	var headless bool
	for _, b := range cfg.Backends {
		for _, a := range b.Addresses {
			if strings.Contains(a, ".svc.cluster.local") && b.ResolveInterval > 0 {
				headless = true
			}
		}
	}
	if !headless {
		t.Error("no backend names a cluster DNS name with re-resolution")
	}
}

// TestConfigMapGatewayCheck runs `gateway -check` on the ConfigMap's configuration, as an operator would.
func TestConfigMapGatewayCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway")
	}
	path, _ := configMapConfig(t)
	bin := filepath.Join(t.TempDir(), "gateway")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bin, "github.com/rsgate/rsgate/cmd/gateway")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-check", "-config", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Fatalf("gateway -check: %v\n%s", err, out)
	}
}
