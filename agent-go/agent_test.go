package agent

import (
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestLogger(b *syncBuffer) *log.Logger { return log.New(b, "livecov: ", 0) }

// The counter arrays registered with the process registry; registrations last for the whole
// test binary, so they are made once (the test may run several times with -count).
var (
	processOnce sync.Once
	processF0   = make([]uint32, 6)
	processF1   = make([]uint32, 1)
)

// TestProcessAgent checks the agent that init started in this test binary, with the
// registrations of instrumented packages made through RegisterFile.
func TestProcessAgent(t *testing.T) {
	if stdAgent == nil {
		t.Fatal("init started no agent")
	}
	select {
	case <-stdAgent.ready:
	case <-time.After(5 * time.Second):
		t.Fatal("process agent not ready")
	}
	if stdAgent.addr == nil {
		t.Skip("the process agent is not listening (LIVECOV_AGENT_ADDR is set in this environment)")
	}
	base := "http://127.0.0.1:" + portString(stdAgent)
	url := base + "/livecov/v1/counters"
	secret := stdAgent.processSecret()
	processOnce.Do(func() {
		RegisterFile(1, make([]uint32, 4)) // wrong length: file 1 has one block
		RegisterFile(0, processF0)
		s := getCounters(t, "GET", url, secret)
		if !equalCounts(s.Files, [][]uint32{{0, 0, 0, 0, 0, 0}, {0}, {0, 0}}) {
			t.Errorf("counters %v with file 1 of the wrong length", s.Files)
		}
		// The array of the wrong length was dropped, so the right one can still come.
		RegisterFile(1, processF1)
	})
	hit(&processF0[2])
	hit(&processF1[0])
	// The test may run several times (-count), each after the last one's boundary: the hits
	// read as the current epoch.
	s, epoch, _ := fetchCounters(t, "GET", url, secret)
	want := [][]uint32{{0, 0, epoch, 0, 0, 0}, {epoch}, {0, 0}}
	if s.Mode != "set" || !equalCounts(s.Files, want) {
		t.Errorf("counters %v (%s), want %v", s.Files, s.Mode, want)
	}
	token := "process-" + strconv.FormatUint(uint64(epoch), 10)
	s, next, _ := fetchCounters(t, "POST", base+"/livecov/v1/boundary?token="+token, secret)
	if !equalCounts(s.Files, want) || next != epoch+1 {
		t.Errorf("boundary answered %v in epoch %d, want %v in epoch %d", s.Files, next, want, epoch+1)
	}
	if atomic.LoadUint32(&processF0[2]) != 0 || atomic.LoadUint32(&processF1[0]) != 0 {
		t.Error("the boundary left the live counters of the process registry set")
	}
}

func portString(a *agent) string {
	s := a.addr.String()
	return s[strings.LastIndexByte(s, ':')+1:]
}

func TestConfigFromEnv(t *testing.T) {
	for _, k := range []string{"LIVECOV_AGENT_ADDR", "LIVECOV_SERVER", "LIVECOV_SERVICE", "LIVECOV_TOKEN", "LIVECOV_HEARTBEAT", "LIVECOV_DEBUG"} {
		t.Setenv(k, "")
	}
	b := testBuild("set")
	b.Server = "http://baked:7777"
	b.Service = "baked"
	cfg := configFromEnv(b)
	if cfg.addr != ":0" || cfg.server != "http://baked:7777" || cfg.service != "baked" || cfg.token != "" ||
		cfg.heartbeat != 10*time.Second || cfg.timeout != 5*time.Second ||
		cfg.backoffMin != time.Second || cfg.backoffMax != time.Minute || cfg.logger != nil {
		t.Errorf("defaults: %+v", cfg)
	}
	b.Service = ""
	if cfg := configFromEnv(b); cfg.service != filepath.Base(os.Args[0]) {
		t.Errorf("service %q, want the binary's name %q", cfg.service, filepath.Base(os.Args[0]))
	}

	t.Setenv("LIVECOV_AGENT_ADDR", "127.0.0.1:9999")
	t.Setenv("LIVECOV_SERVER", "http://other:1")
	t.Setenv("LIVECOV_SERVICE", "svc")
	t.Setenv("LIVECOV_TOKEN", "tok")
	t.Setenv("LIVECOV_HEARTBEAT", "250ms")
	t.Setenv("LIVECOV_DEBUG", "1")
	cfg = configFromEnv(b)
	if cfg.addr != "127.0.0.1:9999" || cfg.server != "http://other:1" || cfg.service != "svc" ||
		cfg.token != "tok" || cfg.heartbeat != 250*time.Millisecond || cfg.logger == nil {
		t.Errorf("from the environment: %+v", cfg)
	}
	for v, want := range map[string]time.Duration{"nonsense": 10 * time.Second, "1ns": minHeartbeat, "-1s": minHeartbeat} {
		t.Setenv("LIVECOV_DEBUG", "")
		t.Setenv("LIVECOV_HEARTBEAT", v)
		if cfg := configFromEnv(b); cfg.heartbeat != want {
			t.Errorf("LIVECOV_HEARTBEAT=%s: %v, want %v", v, cfg.heartbeat, want)
		}
	}
}
