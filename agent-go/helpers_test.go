package agent

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testRegistry returns a registry of the fixture build with fresh counter arrays registered.
func testRegistry(t *testing.T, mode string) (*registry, [][]uint32) {
	t.Helper()
	r := newRegistry(testBuild(mode))
	files := make([][]uint32, len(testSizes))
	for i, n := range testSizes {
		files[i] = make([]uint32, n)
		r.add(i, files[i])
	}
	return r, files
}

// bigBuild is a build of one file of n blocks.
func bigBuild(mode string, n int) buildInfo {
	var meta strings.Builder
	fmt.Fprintf(&meta, `{"build":%q,"mode":%q,"files":[{"name":"example.com/m/big.go","blocks":[`, testBuildID, mode)
	for i := 0; i < n; i++ {
		if i > 0 {
			meta.WriteByte(',')
		}
		fmt.Fprintf(&meta, "[%d,1,%d,9,1,0]", i+1, i+1)
	}
	meta.WriteString("]}]}")
	return buildInfo{ID: testBuildID, Mode: mode, Meta: meta.String(), Files: 1}
}

// testConfig is a configuration with short times, listening on loopback.
func testConfig() config {
	return config{
		addr:       "127.0.0.1:0",
		service:    "svc",
		heartbeat:  20 * time.Millisecond,
		timeout:    500 * time.Millisecond,
		backoffMin: 5 * time.Millisecond,
		backoffMax: 40 * time.Millisecond,
	}
}

// startTest starts an agent, checks that start returned at once, and closes the agent when
// the test ends.
func startTest(t *testing.T, cfg config, reg *registry) *agent {
	t.Helper()
	begin := time.Now()
	a := start(cfg, reg)
	if d := time.Since(begin); d > 100*time.Millisecond {
		t.Errorf("start took %v", d)
	}
	t.Cleanup(a.close)
	select {
	case <-a.ready:
	case <-time.After(5 * time.Second):
		t.Fatal("agent not ready after 5s")
	}
	return a
}

func agentURL(t *testing.T, a *agent) string {
	t.Helper()
	if a.addr == nil {
		t.Fatal("agent is not listening")
	}
	return "http://" + a.addr.String()
}

// do sends a request, with "Authorization: Bearer token" unless token is "", and returns the
// answer with its body read.
func do(t *testing.T, method, url, token string) (*http.Response, []byte) {
	t.Helper()
	return doHeader(t, method, url, token, nil)
}

// doHeader is do with more header fields.
func doHeader(t *testing.T, method, url, token string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// captureOutput runs f with standard output, standard error and the standard logger sent to
// a pipe, and returns what was written. f must not log through t.
func captureOutput(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		out <- b
	}()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	log.SetOutput(w)
	defer func() {
		os.Stdout, os.Stderr = stdout, stderr
		log.SetOutput(os.Stderr)
	}()
	f()
	os.Stdout, os.Stderr = stdout, stderr
	log.SetOutput(os.Stderr)
	w.Close()
	return string(<-out)
}

// settledGoroutines returns the number of goroutines once it has stopped changing, for a
// baseline.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// goroutines returns the number of goroutines once it is at or below want, or after a
// second.
func goroutines(want int) int {
	deadline := time.Now().Add(time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing the test after 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for debug logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
