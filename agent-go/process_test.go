package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exitProgMain is a program as livecov builds it: its counters registered from an init
// function, `defer Finish()` first in main. EXITPROG says how it ends.
const exitProgMain = `package main

import (
	"os"
	"sync/atomic"
	"time"

	agent "livecov.dev/agent"
)

var (
	f0 [6]uint32
	f1 [1]uint32
	f2 [2]uint32
)

func init() {
	agent.RegisterFile(0, f0[:])
	agent.RegisterFile(1, f1[:])
	agent.RegisterFile(2, f2[:])
}

func main() {
	defer agent.Finish()
	atomic.AddUint32(&f0[0], 1)
	atomic.AddUint32(&f0[3], 4)
	atomic.AddUint32(&f2[1], 2)
	switch os.Getenv("EXITPROG") {
	case "exit": // after some periodic writes
		time.Sleep(200 * time.Millisecond)
		os.Exit(0)
	case "exit-now": // before any periodic write
		os.Exit(3)
	case "panic":
		panic("exitprog: boom")
	case "goroutine-panic":
		go func() { panic("exitprog: boom in a goroutine") }()
		time.Sleep(time.Minute)
	}
	atomic.AddUint32(&f1[0], 1)
}
`

// buildExitProg builds exitProgMain against this directory's agent the way livecov does:
// zz_build.go (here: the fixture build, in count mode) and a go.mod at language version
// go1.13 are laid over the agent's directory with -overlay.
func buildExitProg(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	prog, err := buildExitProgIn(goBin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func buildExitProgIn(goBin, tmp string) (string, error) {
	agentDir, err := filepath.Abs(".")
	if err != nil {
		return "", err
	}
	mod := filepath.Join(tmp, "exitprog")
	over := filepath.Join(tmp, "overlay")
	b := testBuild("count")
	b.Service = "exitprog"
	files := map[string]string{
		filepath.Join(mod, "go.mod"): "module exitprog\n\ngo 1.13\n\nrequire livecov.dev/agent v0.0.0\n\n" +
			"replace livecov.dev/agent => " + strconv.Quote(agentDir) + "\n",
		filepath.Join(mod, "main.go"): exitProgMain,
		filepath.Join(over, "zz_build.go"): fmt.Sprintf("package agent\n\nvar build = buildInfo{ID: %q, Mode: %q, Service: %q, Meta: %q, Files: %d}\n",
			b.ID, b.Mode, b.Service, b.Meta, b.Files),
		filepath.Join(over, "go.mod"): "module livecov.dev/agent\n\ngo 1.13\n",
	}
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(agentDir, "zz_build.go"): filepath.Join(over, "zz_build.go"),
		filepath.Join(agentDir, "go.mod"):      filepath.Join(over, "go.mod"),
	}})
	files[filepath.Join(tmp, "overlay.json")] = string(overlay)
	for path, text := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0755); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(text), 0644); err != nil {
			return "", err
		}
	}
	prog := filepath.Join(tmp, "exitprog.exe")
	cmd := exec.Command(goBin, "build", "-overlay", filepath.Join(tmp, "overlay.json"), "-o", prog, ".")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOPROXY=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return prog, nil
}

// runExitProg runs the program with LIVECOV_DIR=dir and the agent off, and returns its exit
// code and what it wrote.
func runExitProg(t *testing.T, prog, dir, how, flush string) (int, string, string) {
	t.Helper()
	code, stdout, stderr, _ := runProg(t, prog, "EXITPROG="+how, "LIVECOV_DIR="+dir,
		"LIVECOV_FLUSH="+flush, "LIVECOV_AGENT_ADDR=off", "LIVECOV_SERVER=off")
	return code, stdout, stderr
}

// runProg runs prog with the environment but its LIVECOV_ variables, and env; its exit code,
// output and how long it took.
func runProg(t *testing.T, prog string, env ...string) (int, string, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIVECOV_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String(), took
}

// TestProcessEnds runs a real program built with the agent and checks what its counters file
// holds after each way of ending.
func TestProcessEnds(t *testing.T) {
	prog := buildExitProg(t)
	final := [][]uint32{{1, 0, 0, 4, 0, 0}, {1}, {0, 2}}  // main returned
	bumped := [][]uint32{{1, 0, 0, 4, 0, 0}, {0}, {0, 2}} // main stopped before its last block
	for _, tc := range []struct {
		how   string
		flush string
		code  int
		want  [][]uint32 // nil: no counters file
	}{
		// Flush, deferred in main, writes everything.
		{"return", "1h", 0, final},
		// Flush also runs while a panic of the main goroutine unwinds main, and does not stop it.
		{"panic", "1h", 2, bumped},
		// os.Exit runs no deferred function: what the last periodic write saw is kept...
		{"exit", "50ms", 0, bumped},
		// ...and without one, nothing.
		{"exit-now", "1h", 3, nil},
		// A panic on another goroutine ends the process without unwinding main.
		{"goroutine-panic", "1h", 2, nil},
	} {
		tc := tc
		t.Run(tc.how, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			code, stdout, stderr := runExitProg(t, prog, dir, tc.how, tc.flush)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			if tc.code == 2 {
				if !strings.Contains(stderr, "panic: exitprog: boom") {
					t.Errorf("the program's panic is not on stderr:\n%s", stderr)
				}
			} else if stderr != "" {
				t.Errorf("stderr: %q", stderr)
			}
			lcc, _ := filepath.Glob(filepath.Join(dir, "exitprog-*.lcc"))
			if tc.want == nil {
				if len(lcc) != 0 {
					t.Errorf("counters files %v, want none", lcc)
				}
				return
			}
			if len(lcc) != 1 {
				t.Fatalf("counters files %v (directory: %v), want one", lcc, dirNames(t, dir))
			}
			s, err := readCountersFile(lcc[0])
			if err != nil {
				t.Fatal(err)
			}
			if s.Build != testBuildID || s.Mode != "count" || !equalCounts(s.Files, tc.want) {
				t.Errorf("counters file holds %v (build %.8s, %s), want %v", s.Files, s.Build, s.Mode, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, testBuildID+".meta.json.gz")); err != nil {
				t.Errorf("no metadata file: %v", err)
			}
		})
	}
}
