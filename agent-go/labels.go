package agent

import (
	"io/ioutil"
	"log"
	"os"
	"sort"
	"strings"
)

// Limits on labels, the same the server checks: a label that breaks one is left out (and
// logged under LIVECOV_DEBUG) rather than costing the registration.
const (
	maxLabels     = 32
	maxLabelKey   = 63
	maxLabelValue = 256
)

// namespaceFile is where Kubernetes mounts the pod's namespace, with its service account.
var namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// labelsFromEnv returns the labels this instance registers with: what it learns by itself
// (vcs.revision and vcs.modified from the build's VCS stamp; in a Kubernetes pod, k8s.pod and
// k8s.namespace), then LIVECOV_LABELS, "key=value,key=value", whose labels win.
func labelsFromEnv(l *log.Logger) map[string]string {
	out := map[string]string{}
	add := func(k, v string) {
		if checkLabel(k, v) {
			out[k] = v
		} else {
			logf(l, "label %q=%q left out: keys are 1 to %d letters, digits, '.', '_', '-' or '/'; values at most %d bytes without commas or control characters", k, v, maxLabelKey, maxLabelValue)
		}
	}
	vcsLabels(add)
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		pod := os.Getenv("POD_NAME")
		if pod == "" {
			pod, _ = os.Hostname()
		}
		if pod != "" {
			add("k8s.pod", pod)
		}
		ns := os.Getenv("POD_NAMESPACE")
		if ns == "" {
			if b, err := ioutil.ReadFile(namespaceFile); err == nil {
				ns = strings.TrimSpace(string(b))
			}
		}
		if ns != "" {
			add("k8s.namespace", ns)
		}
	}
	for _, pair := range strings.Split(os.Getenv("LIVECOV_LABELS"), ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		i := strings.IndexByte(pair, '=')
		if i < 0 {
			logf(l, "LIVECOV_LABELS: %q is not key=value; left out", pair)
			continue
		}
		add(strings.TrimSpace(pair[:i]), strings.TrimSpace(pair[i+1:]))
	}
	if len(out) > maxLabels {
		keys := make([]string, 0, len(out))
		for k := range out {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys[maxLabels:] {
			delete(out, k)
		}
		logf(l, "more than %d labels: kept the first %d by key", maxLabels, maxLabels)
	}
	return out
}

// checkLabel reports whether key=value is a label the server takes.
func checkLabel(key, value string) bool {
	if key == "" || len(key) > maxLabelKey || len(value) > maxLabelValue {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '/'
		if !ok {
			return false
		}
	}
	for _, r := range value {
		if r < 0x20 || r == 0x7f || r == ',' {
			return false
		}
	}
	return true
}
