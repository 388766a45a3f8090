package agent

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serveTest serves reg with the agent's handler on a test server.
func serveTest(t *testing.T, reg *registry, token string) string {
	t.Helper()
	srv := httptest.NewServer(&handler{reg: reg, token: token})
	t.Cleanup(srv.Close)
	return srv.URL
}

func getCounters(t *testing.T, method, url, token string) counterSet {
	t.Helper()
	resp, body := do(t, method, url, token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != countersContentType {
		t.Errorf("Content-Type %q, want %q", ct, countersContentType)
	}
	if id := resp.Header.Get("Livecov-Build"); id != testBuildID {
		t.Errorf("Livecov-Build %q", id)
	}
	s, err := decodeCounters(body)
	if err != nil {
		t.Fatal(err)
	}
	if s.Build != testBuildID {
		t.Errorf("build %q in the counters", s.Build)
	}
	return s
}

func TestCountersEndpoint(t *testing.T) {
	for _, mode := range []string{"set", "count", "atomic"} {
		reg, files := testRegistry(t, mode)
		files[0][0], files[0][4], files[2][1] = 1, 7, 1<<32-1
		url := serveTest(t, reg, "")
		s := getCounters(t, "GET", url+"/livecov/v1/counters", "")
		want := [][]uint32{{1, 0, 0, 0, 7, 0}, {0}, {0, 1<<32 - 1}}
		if s.Mode != mode || !equalCounts(s.Files, want) {
			t.Errorf("%s: got mode %s, counters %v, want %v", mode, s.Mode, s.Files, want)
		}
		if !equalCounts(files, want) {
			t.Errorf("%s: reading changed the counters: %v", mode, files)
		}
	}
}

func TestCountersOfUnregisteredFilesAreZero(t *testing.T) {
	reg := newRegistry(testBuild("set"))
	reg.add(1, []uint32{1})
	s := getCounters(t, "GET", serveTest(t, reg, "")+"/livecov/v1/counters", "")
	want := [][]uint32{{0, 0, 0, 0, 0, 0}, {1}, {0, 0}}
	if !equalCounts(s.Files, want) {
		t.Errorf("counters %v, want %v", s.Files, want)
	}
}

func TestResetEndpoint(t *testing.T) {
	reg, files := testRegistry(t, "count")
	files[0][2], files[1][0], files[2][0] = 3, 1, 9
	url := serveTest(t, reg, "")
	got := getCounters(t, "POST", url+"/livecov/v1/reset", "")
	want := [][]uint32{{0, 0, 3, 0, 0, 0}, {1}, {9, 0}}
	if !equalCounts(got.Files, want) {
		t.Errorf("reset returned %v, want %v", got.Files, want)
	}
	zero := [][]uint32{{0, 0, 0, 0, 0, 0}, {0}, {0, 0}}
	if !equalCounts(files, zero) {
		t.Errorf("after reset the counters are %v", files)
	}
	files[0][5] = 2
	got = getCounters(t, "POST", url+"/livecov/v1/reset", "")
	want = [][]uint32{{0, 0, 0, 0, 0, 2}, {0}, {0, 0}}
	if !equalCounts(got.Files, want) {
		t.Errorf("second reset returned %v, want %v", got.Files, want)
	}
	got = getCounters(t, "GET", url+"/livecov/v1/counters", "")
	if !equalCounts(got.Files, zero) {
		t.Errorf("counters after reset: %v", got.Files)
	}
}

func TestProfileEndpoint(t *testing.T) {
	reg, files := testRegistry(t, "set")
	files[0][0], files[0][4], files[2][1] = 1, 1, 1
	resp, body := do(t, "GET", serveTest(t, reg, "")+"/livecov/v1/profile", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s", resp.Status, body)
	}
	if id := resp.Header.Get("Livecov-Build"); id != testBuildID {
		t.Errorf("Livecov-Build %q", id)
	}
	// Package example.com/m (a.go, pkg0.go) before package example.com/m/pkg; within a file
	// by start line, end line, start column, end column.
	want := `mode: set
example.com/m/a.go:3.14,5.2 2 1
example.com/m/a.go:7.1,7.5 0 0
example.com/m/pkg0.go:3.14,5.2 1 0
example.com/m/pkg/b.go:5.20,6.4 1 0
example.com/m/pkg/b.go:5.20,8.2 1 0
example.com/m/pkg/b.go:10.1,12.9 1 0
example.com/m/pkg/b.go:10.2,12.3 2 1
example.com/m/pkg/b.go:20.5,22.1 1 0
example.com/m/pkg/b.go:20.1,25.1 3 1
`
	if string(body) != want {
		t.Errorf("profile:\n%s\nwant:\n%s", body, want)
	}
}

func TestMetaEndpoint(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	url := serveTest(t, reg, "")
	for i := 0; i < 2; i++ { // the second answer comes from the cached compressed copy
		// A transport without compression handling, to see the bytes as sent.
		client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		resp, err := client.Get(url + "/livecov/v1/meta")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s", resp.Status, raw)
		}
		for k, v := range map[string]string{
			"Content-Type":     "application/json",
			"Content-Encoding": "gzip",
			"Livecov-Build":    testBuildID,
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if string(text) != reg.build.Meta {
			t.Errorf("meta decodes to %q, want the build's metadata", text)
		}
		if !json.Valid(text) {
			t.Error("meta is not JSON")
		}
	}
}

func TestEndpointErrors(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	url := serveTest(t, reg, "")
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/", 404, ""},
		{"GET", "/livecov/v1/nothing", 404, ""},
		{"GET", "/livecov/v1/counters/", 404, ""},
		{"POST", "/livecov/v1/counters", 405, "GET, HEAD"},
		{"DELETE", "/livecov/v1/meta", 405, "GET, HEAD"},
		{"PUT", "/livecov/v1/profile", 405, "GET, HEAD"},
		{"GET", "/livecov/v1/reset", 405, "POST"},
		{"HEAD", "/livecov/v1/reset", 405, "POST"},
		{"HEAD", "/livecov/v1/counters", 200, ""},
	} {
		resp, body := do(t, tc.method, url+tc.path, "")
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.code)
			continue
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		if tc.code != 200 && tc.method != "HEAD" {
			checkErrorJSON(t, resp, body)
		}
	}
}

func TestEndpointsBadMetadata(t *testing.T) {
	b := testBuild("set")
	b.Meta = `{"build":"other"}`
	url := serveTest(t, newRegistry(b), "")
	for _, ep := range []struct{ method, path string }{
		{"GET", "/livecov/v1/counters"}, {"POST", "/livecov/v1/reset"}, {"GET", "/livecov/v1/profile"},
	} {
		resp, body := do(t, ep.method, url+ep.path, "")
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s %s: %s, want 500", ep.method, ep.path, resp.Status)
		}
		if msg := checkErrorJSON(t, resp, body); !strings.Contains(msg, "bad build metadata") {
			t.Errorf("%s %s: error %q", ep.method, ep.path, msg)
		}
	}
}

func TestToken(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	url := serveTest(t, reg, "s3cret")
	for _, ep := range []struct{ method, path string }{
		{"GET", "/livecov/v1/meta"}, {"GET", "/livecov/v1/counters"},
		{"POST", "/livecov/v1/reset"}, {"GET", "/livecov/v1/profile"}, {"GET", "/elsewhere"},
	} {
		for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"} {
			req, _ := http.NewRequest(ep.method, url+ep.path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %s, want 401", ep.method, ep.path, auth, resp.Status)
				continue
			}
			checkErrorJSON(t, resp, body)
		}
		resp, body := do(t, ep.method, url+ep.path, "s3cret")
		want := http.StatusOK
		if ep.path == "/elsewhere" {
			want = http.StatusNotFound
		}
		if resp.StatusCode != want {
			t.Errorf("%s %s with the token: %s %s, want %d", ep.method, ep.path, resp.Status, body, want)
		}
	}
	// The scheme is case-insensitive.
	req, _ := http.NewRequest("GET", url+"/livecov/v1/counters", nil)
	req.Header.Set("Authorization", "bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("lower-case scheme: %s", resp.Status)
	}
}

// checkErrorJSON checks that an error answer is {"error": "..."} and returns the message.
func checkErrorJSON(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	var e map[string]string
	if err := json.Unmarshal(body, &e); err != nil || len(e) != 1 || e["error"] == "" {
		t.Errorf("error body %q is not {\"error\": \"...\"}", body)
	}
	return e["error"]
}

// brokenWriter is a connection that broke: nothing can be written.
type brokenWriter struct{ header http.Header }

func (w *brokenWriter) Header() http.Header         { return w.header }
func (w *brokenWriter) WriteHeader(int)             {}
func (w *brokenWriter) Write(p []byte) (int, error) { return 0, errors.New("broken pipe") }

func TestResetNotDeliveredLosesNothing(t *testing.T) {
	reg, files := testRegistry(t, "count")
	files[0][1], files[2][1] = 4, 1
	h := &handler{reg: reg}
	h.ServeHTTP(&brokenWriter{header: http.Header{}}, httptest.NewRequest("POST", "/livecov/v1/reset", nil))
	want := [][]uint32{{0, 4, 0, 0, 0, 0}, {0}, {0, 1}}
	if !equalCounts(files, want) {
		t.Errorf("after a reset nobody received: %v, want %v", files, want)
	}
	// A writer that cannot flush but did take the answer: the reset stands.
	rec := httptest.NewRecorder()
	h.ServeHTTP(struct{ http.ResponseWriter }{rec}, httptest.NewRequest("POST", "/livecov/v1/reset", nil))
	got, err := decodeCounters(rec.Body.Bytes())
	if err != nil || !equalCounts(got.Files, want) {
		t.Errorf("reset answered %v (%v), want %v", got.Files, err, want)
	}
	if zero := [][]uint32{{0, 0, 0, 0, 0, 0}, {0}, {0, 0}}; !equalCounts(files, zero) {
		t.Errorf("after a delivered reset: %v", files)
	}
}
