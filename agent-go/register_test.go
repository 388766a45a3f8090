package agent

import (
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a livecov server that records what agents send.
type fakeServer struct {
	*httptest.Server
	mu         sync.Mutex
	registers  []recorded
	heartbeats []recorded
	// forget, when positive, is how many heartbeats to answer 404 ("unknown instance").
	forget int
}

type recorded struct {
	path   string
	header http.Header
	body   []byte
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	s := &fakeServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

var heartbeatPath = regexp.MustCompile(`^/api/v1/agents/([0-9a-f]{32})/heartbeat$`)

func (s *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{path: r.URL.Path, header: r.Header.Clone(), body: body}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == "POST" && r.URL.Path == "/api/v1/agents/register":
		s.registers = append(s.registers, rec)
		w.Write([]byte(`{"ok":true}`))
	case r.Method == "POST" && heartbeatPath.MatchString(r.URL.Path):
		s.heartbeats = append(s.heartbeats, rec)
		if s.forget > 0 {
			s.forget--
			http.Error(w, `{"error":"unknown instance"}`, http.StatusNotFound)
		}
	default:
		http.Error(w, `{"error":"no"}`, http.StatusNotFound)
	}
}

func (s *fakeServer) counts() (registers, heartbeats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.registers), len(s.heartbeats)
}

func TestRegistration(t *testing.T) {
	srv := newFakeServer(t)
	cfg := testConfig()
	cfg.server = srv.URL + "/" // a trailing slash is dropped
	cfg.service = "checkout"
	cfg.token = "tok"
	reg, _ := testRegistry(t, "atomic")
	a := startTest(t, cfg, reg)
	waitFor(t, "two heartbeats", func() bool { _, hb := srv.counts(); return hb >= 2 })

	srv.mu.Lock()
	rec := srv.registers[0]
	hb := srv.heartbeats[0]
	nreg := len(srv.registers)
	srv.mu.Unlock()
	if nreg != 1 {
		t.Errorf("%d registrations, want 1", nreg)
	}
	if got := rec.header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("register Authorization %q", got)
	}
	if got := rec.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("register Content-Type %q", got)
	}
	var body map[string]interface{}
	if err := json.Unmarshal(rec.body, &body); err != nil {
		t.Fatalf("register body %q: %v", rec.body, err)
	}
	host, _ := os.Hostname()
	want := map[string]interface{}{
		"service":    "checkout",
		"build":      testBuildID,
		"hostname":   host,
		"pid":        float64(os.Getpid()),
		"mode":       "atomic",
		"go_version": runtime.Version(),
		"port":       float64(a.addr.(*net.TCPAddr).Port),
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("register %s = %v, want %v", k, body[k], v)
		}
	}
	instance, _ := body["instance"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(instance) {
		t.Errorf("instance %q is not 16 bytes in hex", instance)
	}
	st, _ := body["start_time"].(string)
	if ts, err := time.Parse(time.RFC3339, st); err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Second {
		t.Errorf("start_time %q: %v", st, err)
	}
	secret, _ := body["secret"].(string)
	if secret != a.processSecret() || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(secret) || secret == instance {
		t.Errorf("secret %q, want the process secret %q", secret, a.processSecret())
	}
	if len(body) != 10 {
		t.Errorf("register body has %d fields, want 10: %s", len(body), rec.body)
	}
	if hb.path != "/api/v1/agents/"+instance+"/heartbeat" {
		t.Errorf("heartbeat path %s, want the registered instance's", hb.path)
	}
	if got := hb.header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("heartbeat Authorization %q", got)
	}
	if got := hb.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("heartbeat Content-Type %q", got)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, hb := range srv.heartbeats {
		if want := `{"secret":"` + secret + `"}`; string(hb.body) != want {
			t.Errorf("heartbeat %d body %s, want %s", i, hb.body, want)
		}
	}
}

func TestHeartbeat404Reregisters(t *testing.T) {
	srv := newFakeServer(t)
	srv.forget = 1
	cfg := testConfig()
	cfg.server = srv.URL
	reg, _ := testRegistry(t, "set")
	startTest(t, cfg, reg)
	waitFor(t, "a heartbeat after registering again", func() bool {
		_, hb := srv.counts()
		return hb >= 3
	})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.registers) != 2 {
		t.Errorf("%d registrations, want 2 (the first, and one after the 404)", len(srv.registers))
	}
	if string(srv.registers[0].body) != string(srv.registers[1].body) {
		t.Errorf("registered again with a different body:\n%s\n%s", srv.registers[0].body, srv.registers[1].body)
	}
	// Without LIVECOV_TOKEN the agent authenticates to the server with nothing: the secret
	// travels in the bodies only.
	for _, rec := range append(srv.registers, srv.heartbeats...) {
		if got := rec.header.Get("Authorization"); got != "" {
			t.Errorf("%s: Authorization %q without a token", rec.path, got)
		}
	}
}

func TestNoRegistrationWithoutServer(t *testing.T) {
	srv := newFakeServer(t)
	for _, server := range []string{"ftp://x", "localhost:7777", "http://"} {
		var logged syncBuffer
		cfg := testConfig()
		cfg.server = server
		cfg.logger = log.New(&logged, "", 0)
		reg, _ := testRegistry(t, "set")
		a := startTest(t, cfg, reg)
		waitFor(t, "the agent to give up on "+server, func() bool {
			return strings.Contains(logged.String(), "not registering")
		})
		a.close()
	}
	// And with LIVECOV_AGENT_ADDR=off nothing listens and nothing registers.
	cfg := testConfig()
	cfg.addr = "off"
	cfg.server = srv.URL
	reg, _ := testRegistry(t, "set")
	a := startTest(t, cfg, reg)
	time.Sleep(100 * time.Millisecond)
	if a.addr != nil {
		t.Errorf("listening on %v with addr off", a.addr)
	}
	if r, _ := srv.counts(); r != 0 {
		t.Errorf("%d registrations with addr off", r)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{initial: time.Second, limit: time.Minute}
	ceilings := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for _, c := range ceilings {
		c *= time.Second
		d := b.next()
		if d < c/2 || d > c {
			t.Errorf("delay %v, want between %v and %v", d, c/2, c)
		}
	}
	b.reset()
	if d := b.next(); d > time.Second {
		t.Errorf("after reset: delay %v", d)
	}
}
