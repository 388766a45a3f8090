package agent

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// channelServer is a livecov server that asks for the channel in its heartbeat answers
// (when ask is set) and hands each poll the next of its requests.
type channelServer struct {
	*httptest.Server
	ask bool
	// conflict answers polls 409, as a server under --agent-channel never does.
	conflict bool

	mu       sync.Mutex
	secret   string // the registration's
	requests []channelRequest
	polls    int
	pollHdr  []http.Header
	replies  []reply
}

type reply struct {
	id     string
	header http.Header
	body   []byte
}

func newChannelServer(t *testing.T, ask bool) *channelServer {
	t.Helper()
	s := &channelServer{ask: ask}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

func (s *channelServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	path := r.URL.Path
	switch {
	case path == "/api/v1/agents/register":
		var reg registration
		json.Unmarshal(body, &reg)
		s.secret = reg.Secret
		w.Write([]byte(`{}`))
	case strings.HasSuffix(path, "/heartbeat"):
		if s.ask {
			w.Write([]byte(`{"channel":true}`))
		} else {
			w.Write([]byte(`{"channel":false}`))
		}
	case strings.HasSuffix(path, "/channel"):
		s.polls++
		s.pollHdr = append(s.pollHdr, r.Header.Clone())
		if s.conflict {
			http.Error(w, `{"error":"pulls only"}`, http.StatusConflict)
			return
		}
		if len(s.requests) == 0 {
			s.mu.Unlock()
			time.Sleep(20 * time.Millisecond) // a short long poll
			s.mu.Lock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next := s.requests[0]
		s.requests = s.requests[1:]
		if next.Authorization == "secret" {
			next.Authorization = "Bearer " + s.secret
		}
		json.NewEncoder(w).Encode(next)
	case strings.Contains(path, "/channel/"):
		s.replies = append(s.replies, reply{
			id:     path[strings.LastIndex(path, "/")+1:],
			header: r.Header.Clone(),
			body:   body,
		})
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, `{"error":"no"}`, http.StatusNotFound)
	}
}

func (s *channelServer) snapshot() (polls int, replies []reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls, append([]reply(nil), s.replies...)
}

func TestChannelServesTheServersRequestsAsThePortWould(t *testing.T) {
	s := newChannelServer(t, true)
	s.requests = []channelRequest{
		{ID: "1", Method: "GET", Path: "/livecov/v1/counters", Authorization: "secret"},
		{ID: "2", Method: "GET", Path: "/livecov/v1/counters", Authorization: "Bearer guess"},
		{ID: "3", Method: "DELETE", Path: "/livecov/v1/counters", Authorization: "secret"},
		{ID: "4", Method: "POST", Path: "/livecov/v1/boundary?token=t1", Authorization: "secret"},
	}
	reg, files := testRegistry(t, "count")
	files[0][0] = 7
	cfg := testConfig()
	cfg.server = s.URL
	a := startTest(t, cfg, reg)
	waitFor(t, "four answers", func() bool {
		_, r := s.snapshot()
		return len(r) == 4
	})
	_, replies := s.snapshot()
	s.mu.Lock()
	pollHdr := append([]http.Header(nil), s.pollHdr...)
	s.mu.Unlock()
	for _, h := range pollHdr {
		if got := h.Get("Livecov-Secret"); got != a.processSecret() {
			t.Errorf("poll's Livecov-Secret = %q, want the process secret", got)
		}
	}
	want := []struct {
		status string
		body   string
	}{{"200", "LCC1"}, {"401", `{"error"`}, {"400", `{"error"`}, {"200", "LCC1"}}
	for i, r := range replies {
		if r.id != strconv.Itoa(i+1) {
			t.Errorf("reply %d answers %q", i, r.id)
		}
		if got := r.header.Get("Livecov-Status"); got != want[i].status {
			t.Errorf("reply %s: status %s, want %s (%s)", r.id, got, want[i].status, r.body)
		}
		if !bytes.HasPrefix(r.body, []byte(want[i].body)) {
			t.Errorf("reply %s: body %q, want it to begin %q", r.id, r.body, want[i].body)
		}
		if r.header.Get("Livecov-Secret") != a.processSecret() {
			t.Errorf("reply %s without the process secret", r.id)
		}
	}
	if got := replies[0].header.Get("Livecov-Build"); got != testBuildID {
		t.Errorf("Livecov-Build = %q", got)
	}
	// The boundary was applied: the agent is in its second epoch.
	if got := replies[3].header.Get("Livecov-Epoch"); got != "2" {
		t.Errorf("boundary's Livecov-Epoch = %q, want 2", got)
	}
	// What came over the channel is what the port answers.
	resp, body := do(t, "GET", agentURL(t, a)+"/livecov/v1/counters", a.processSecret())
	if resp.StatusCode != 200 || !bytes.Equal(body, replies[3].body) {
		t.Errorf("the port answers %d %q, the channel %q", resp.StatusCode, body, replies[3].body)
	}
}

func TestChannelOnlyWhenAskedOrForced(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ask     bool
		channel string
		polls   bool
	}{
		{"not asked", false, "auto", false},
		{"asked", true, "auto", true},
		{"asked, off", true, "off", false},
		{"forced", false, "on", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newChannelServer(t, tc.ask)
			cfg := testConfig()
			cfg.server = s.URL
			cfg.channel = tc.channel
			reg, _ := testRegistry(t, "set")
			startTest(t, cfg, reg)
			if tc.polls {
				waitFor(t, "a poll", func() bool { p, _ := s.snapshot(); return p > 0 })
				return
			}
			time.Sleep(10 * cfg.heartbeat)
			if p, _ := s.snapshot(); p != 0 {
				t.Errorf("%d polls", p)
			}
		})
	}
}

func TestChannelStopsWhenTheServerOnlyPulls(t *testing.T) {
	s := newChannelServer(t, true)
	s.conflict = true
	cfg := testConfig()
	cfg.server = s.URL
	reg, _ := testRegistry(t, "set")
	startTest(t, cfg, reg)
	waitFor(t, "a poll", func() bool { p, _ := s.snapshot(); return p > 0 })
	time.Sleep(20 * cfg.heartbeat)
	if p, _ := s.snapshot(); p != 1 {
		t.Errorf("%d polls after a 409, want 1", p)
	}
}

func TestLivecovProxyCarriesEveryRequestToTheServer(t *testing.T) {
	s := newChannelServer(t, true)
	s.requests = []channelRequest{{ID: "1", Method: "GET", Path: "/livecov/v1/counters", Authorization: "secret"}}
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A forward proxy is asked for absolute URLs.
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		out := r.Clone(r.Context())
		out.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(func() {
		proxy.CloseClientConnections()
		proxy.Close()
	})
	t.Setenv("LIVECOV_PROXY", proxy.URL)
	cfg := testConfig()
	cfg.proxy = configFromEnv(buildInfo{}).proxy
	cfg.server = s.URL
	reg, _ := testRegistry(t, "set")
	a := startTest(t, cfg, reg)
	waitFor(t, "an answer", func() bool { _, r := s.snapshot(); return len(r) == 1 })
	mu.Lock()
	defer mu.Unlock()
	instance := "/api/v1/agents/" + a.instanceID()
	for _, want := range []string{"/api/v1/agents/register", instance + "/heartbeat", instance + "/channel", instance + "/channel/1"} {
		found := false
		for _, p := range seen {
			found = found || p == want
		}
		if !found {
			t.Errorf("%s did not go through the proxy (it saw %q)", want, seen)
		}
	}
}

func TestLivecovProxyMustBeAnHTTPURL(t *testing.T) {
	for v, ok := range map[string]bool{
		"http://proxy.internal:3128": true,
		"https://proxy.internal":     true,
		"proxy.internal:3128":        false,
		"socks5://proxy:1080":        false,
		"http://":                    false,
	} {
		t.Setenv("LIVECOV_PROXY", v)
		if got := configFromEnv(buildInfo{}).proxy != nil; got != ok {
			t.Errorf("LIVECOV_PROXY=%q taken: %v, want %v", v, got, ok)
		}
	}
}
