package agent

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// runWithServer runs the exit program with its agent on and LIVECOV_SERVER=server; its exit
// code, output and how long it took.
func runWithServer(t *testing.T, prog, how, server string) (int, string, string, time.Duration) {
	t.Helper()
	return runProg(t, prog, "EXITPROG="+how, "LIVECOV_AGENT_ADDR=127.0.0.1:0",
		"LIVECOV_SERVER="+server, "LIVECOV_HEARTBEAT=1h")
}

// TestFinishDeliversTheLastCounters runs a real program whose main returns, against a server
// that first lacks the build's metadata: the agent sends it, then the counters, which are
// those main left; the program's exit and output are as without livecov.
func TestFinishDeliversTheLastCounters(t *testing.T) {
	prog := buildExitProg(t)
	var mu sync.Mutex
	var calls []string
	var delivered finalDelivery
	var meta []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/final"):
			if meta == nil {
				http.Error(w, `{"error":"build is not stored"}`, http.StatusConflict)
				return
			}
			json.Unmarshal(body, &delivered)
			w.Write([]byte(`{}`))
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/api/v1/builds/"):
			meta = body
			w.WriteHeader(http.StatusCreated)
		default:
			// Registration and heartbeats: whatever the timing, they change nothing here.
			w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()

	code, stdout, stderr, _ := runWithServer(t, prog, "return", srv.URL)
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	var finals []string
	for _, c := range calls {
		if !strings.HasSuffix(c, "/register") && !strings.HasSuffix(c, "/heartbeat") {
			finals = append(finals, c)
		}
	}
	b := testBuild("count")
	want := []string{
		"POST /api/v1/agents/" + delivered.Registration.Instance + "/final",
		"PUT /api/v1/builds/" + b.ID,
		"POST /api/v1/agents/" + delivered.Registration.Instance + "/final",
	}
	if !reflect.DeepEqual(finals, want) {
		t.Errorf("requests %v, want %v", finals, want)
	}
	if len(meta) < 2 || meta[0] != 0x1f || meta[1] != 0x8b {
		t.Errorf("the metadata sent is not gzip: %q", meta)
	}
	r := delivered.Registration
	if r.Service != "exitprog" || r.Build != b.ID || r.Mode != "count" || r.Secret == "" || r.PID == 0 {
		t.Errorf("registration %+v", r)
	}
	raw, err := base64.StdEncoding.DecodeString(delivered.Counters)
	if err != nil {
		t.Fatal(err)
	}
	s, err := decodeCounters(raw)
	if err != nil {
		t.Fatal(err)
	}
	if final := [][]uint32{{1, 0, 0, 4, 0, 0}, {1}, {0, 2}}; !reflect.DeepEqual(s.Files, final) {
		t.Errorf("counters %v, want %v", s.Files, final)
	}
}

// TestFinishWithoutAServer: a server that does not answer costs a returning process at most
// the final timeout, and its exit stays its own; os.Exit delivers nothing.
func TestFinishWithoutAServer(t *testing.T) {
	prog := buildExitProg(t)
	// A listener that accepts and never answers.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer func() {
		hang.CloseClientConnections()
		hang.Close()
	}()
	code, stdout, stderr, took := runWithServer(t, prog, "return", hang.URL)
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if took > defaultFinal+3*time.Second {
		t.Errorf("the process took %v to end, want about the final timeout (%v) at most", took, defaultFinal)
	}
	code, _, _, took = runWithServer(t, prog, "exit-now", hang.URL)
	if code != 3 || took > time.Second {
		t.Errorf("os.Exit(3): exit %d after %v", code, took)
	}
}
