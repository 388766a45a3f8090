package agent

import (
	"encoding/json"
	"io/ioutil"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// setenv sets the environment variables of vars ("" unsets) for the rest of the test.
func setenv(t *testing.T, vars map[string]string) {
	for k, v := range vars {
		old, had := os.LookupEnv(k)
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
		k := k
		t.Cleanup(func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		})
	}
}

func TestLabelsFromEnv(t *testing.T) {
	setenv(t, map[string]string{
		"LIVECOV_LABELS":          " env=staging, version=1.4.2,,broken,bad key=x,ctl=a\x01b,team=a/b ",
		"KUBERNETES_SERVICE_HOST": "",
	})
	got := labelsFromEnv(nil)
	want := map[string]string{"env": "staging", "version": "1.4.2", "team": "a/b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

func TestLabelsInKubernetes(t *testing.T) {
	dir, err := ioutil.TempDir("", "ns")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns := filepath.Join(dir, "namespace")
	if err := ioutil.WriteFile(ns, []byte("qa\n"), 0644); err != nil {
		t.Fatal(err)
	}
	old := namespaceFile
	namespaceFile = ns
	defer func() { namespaceFile = old }()
	setenv(t, map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.0.0.1",
		"POD_NAME":                "",
		"POD_NAMESPACE":           "",
		"LIVECOV_LABELS":          "env=prod",
	})
	host, _ := os.Hostname()
	got := labelsFromEnv(nil)
	want := map[string]string{"env": "prod", "k8s.pod": host, "k8s.namespace": "qa"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	// The downward API's variables, and LIVECOV_LABELS over both.
	setenv(t, map[string]string{
		"POD_NAME":       "web-7f9c",
		"POD_NAMESPACE":  "staging",
		"LIVECOV_LABELS": "k8s.namespace=override",
	})
	got = labelsFromEnv(nil)
	want = map[string]string{"k8s.pod": "web-7f9c", "k8s.namespace": "override"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

func TestTooManyLabelsKeepTheFirstByKey(t *testing.T) {
	v := ""
	for i := 0; i < 40; i++ {
		v += "k" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + "=1,"
	}
	setenv(t, map[string]string{"LIVECOV_LABELS": v, "KUBERNETES_SERVICE_HOST": ""})
	got := labelsFromEnv(nil)
	if len(got) != maxLabels || got["kaa"] != "1" || got["kbn"] != "" {
		t.Errorf("%d labels: %v", len(got), got)
	}
}

func TestRegistrationCarriesLabels(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig()
	cfg.server = srv.URL
	cfg.labels = map[string]string{"env": "staging"}
	reg, _ := testRegistry(t, "set")
	startTest(t, cfg, reg)
	waitFor(t, "a registration", func() bool { r, _ := srv.counts(); return r >= 1 })
	srv.mu.Lock()
	rec := srv.registers[0]
	srv.mu.Unlock()
	var body struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(rec.body, &body); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(body.Labels, cfg.labels) {
		t.Errorf("labels %v, want %v", body.Labels, cfg.labels)
	}
}
