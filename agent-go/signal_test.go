//go:build unix

package agent

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The programs of the signal tests. Each is built twice: as `go build` builds it, with the
// hooks of plainHooks, and as livecov builds it, with those of agentHooks, against this
// directory's agent. work has no signal handler: SIGTERM and SIGINT end it with Go's default
// handling. handler imports os/signal and handles SIGTERM itself.
const (
	sigWorkMain = `package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	defer finish()
	for i := 0; i < 5; i++ {
		count(0, 3)
	}
	count(2, 1)
	fmt.Println("ready")
	d, err := time.ParseDuration(os.Getenv("SIGPROG_SLEEP"))
	if err != nil {
		d = time.Minute
	}
	time.Sleep(d)
	count(1, 0)
	fmt.Println("woke up")
}
`
	sigHandlerMain = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	defer finish()
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM)
	count(0, 0)
	fmt.Println("ready")
	fmt.Println("stopping:", <-ch)
	count(1, 0)
	time.Sleep(300 * time.Millisecond)
	select {
	case s := <-ch:
		fmt.Println("again:", s)
	default:
	}
	if os.Getenv("SIGPROG") == "exit3" {
		os.Exit(3)
	}
}
`
	plainHooks = `package main

func count(file, block int) {}

func finish() {}
`
	agentHooks = `package main

import (
	"sync/atomic"

	agent "livecov.dev/agent"
)

var (
	f0    [6]uint32
	f1    [1]uint32
	f2    [2]uint32
	files = [][]uint32{f0[:], f1[:], f2[:]}
)

func init() {
	for i, f := range files {
		agent.RegisterFile(i, f)
	}
}

func count(file, block int) { atomic.AddUint32(&files[file][block], 1) }

func finish() { agent.Finish() }
`
)

// sigProgs are the binaries of the signal tests: work and handler as go build and as livecov
// build them.
type sigProgs struct {
	workPlain, workAgent, handlerPlain, handlerAgent string
}

// TestSignals runs the signal tests with the programs built once, in a directory removed when
// they are done.
func TestSignals(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	tmp := t.TempDir()
	build := func(name, main string, agent, hostSignals bool) string {
		t.Helper()
		prog, err := buildSigProg(goBin, filepath.Join(tmp, fmt.Sprintf("%s-%v", name, agent)), main, agent, hostSignals)
		if err != nil {
			t.Fatal(err)
		}
		return prog
	}
	// livecov's build says HostSignals exactly when a package imports os/signal.
	p := sigProgs{
		workPlain:    build("work", sigWorkMain, false, false),
		workAgent:    build("work", sigWorkMain, true, false),
		handlerPlain: build("handler", sigHandlerMain, false, true),
		handlerAgent: build("handler", sigHandlerMain, true, true),
	}
	for _, tc := range []struct {
		name string
		test func(*testing.T, sigProgs)
	}{
		{"DeliverTheLastCounters", testSignalDeliversTheLastCounters},
		{"IgnoredAtStart", testSignalIgnoredAtStart},
		{"Off", testSignalsOff},
		{"DeliveryIsBounded", testSignalDeliveryIsBounded},
		{"HostWithAHandler", testSignalsOfAHostWithAHandler},
	} {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, p)
		})
	}
}

// buildSigProg builds main in tmp, plain or with the agent as livecov lays it out (see
// buildExitProgIn), in count mode on the fixture build.
func buildSigProg(goBin, tmp, main string, withAgent, hostSignals bool) (string, error) {
	agentDir, err := filepath.Abs(".")
	if err != nil {
		return "", err
	}
	mod := filepath.Join(tmp, "prog")
	goMod := "module sigprog\n\ngo 1.13\n"
	hooks := plainHooks
	var overlay string
	if withAgent {
		goMod += "\nrequire livecov.dev/agent v0.0.0\n\nreplace livecov.dev/agent => " + strconv.Quote(agentDir) + "\n"
		hooks = agentHooks
		b := testBuild("count")
		b.Service = "sigprog"
		over := filepath.Join(tmp, "overlay")
		zz := fmt.Sprintf("package agent\n\nvar build = buildInfo{ID: %q, Mode: %q, Service: %q, Meta: %q, Files: %d, HostSignals: %v}\n",
			b.ID, b.Mode, b.Service, b.Meta, b.Files, hostSignals)
		if err := writeFiles(map[string]string{
			filepath.Join(over, "zz_build.go"): zz,
			filepath.Join(over, "go.mod"):      "module livecov.dev/agent\n\ngo 1.13\n",
		}); err != nil {
			return "", err
		}
		js, _ := json.Marshal(map[string]map[string]string{"Replace": {
			filepath.Join(agentDir, "zz_build.go"): filepath.Join(over, "zz_build.go"),
			filepath.Join(agentDir, "go.mod"):      filepath.Join(over, "go.mod"),
		}})
		overlay = filepath.Join(tmp, "overlay.json")
		if err := os.WriteFile(overlay, js, 0644); err != nil {
			return "", err
		}
	}
	if err := writeFiles(map[string]string{
		filepath.Join(mod, "go.mod"):   goMod,
		filepath.Join(mod, "main.go"):  main,
		filepath.Join(mod, "hooks.go"): hooks,
	}); err != nil {
		return "", err
	}
	prog := filepath.Join(tmp, "sigprog")
	args := []string{"build", "-o", prog}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.Command(goBin, append(args, ".")...)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOPROXY=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return prog, nil
}

func writeFiles(files map[string]string) error {
	for path, text := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(text), 0644); err != nil {
			return err
		}
	}
	return nil
}

// finalServer stands in for the livecov server: it takes registrations and heartbeats, and
// keeps the final deliveries it is sent. With hang, it never answers a final delivery.
type finalServer struct {
	*httptest.Server
	mu     sync.Mutex
	finals []finalDelivery
}

func newFinalServer(t *testing.T, hang bool) *finalServer {
	s := &finalServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/final") {
			if hang {
				<-r.Context().Done()
				return
			}
			var d finalDelivery
			if err := json.Unmarshal(body, &d); err == nil {
				s.mu.Lock()
				s.finals = append(s.finals, d)
				s.mu.Unlock()
			}
		}
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(func() {
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

// counts returns the counters of each final delivery received.
func (s *finalServer) counts(t *testing.T) [][][]uint32 {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][][]uint32
	for _, d := range s.finals {
		raw, err := base64.StdEncoding.DecodeString(d.Counters)
		if err != nil {
			t.Fatal(err)
		}
		c, err := decodeCounters(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Files)
	}
	return out
}

// outcome is how a run of a program ended: its standard output and error, its exit code
// (-1 if a signal killed it) and the signal that killed it.
type outcome struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal
	took           time.Duration // from the first signal sent to the end
}

// A sigRun is a program running with its output read.
type sigRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout strings.Builder
	stderr strings.Builder
	done   chan struct{}
	err    error
}

// startSig runs argv (a program or a wrapper of it) with the environment but its LIVECOV_
// variables, and env, and waits for it to print "ready".
func startSig(t *testing.T, argv []string, env ...string) *sigRun {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIVECOV_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &sigRun{t: t, cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); <-r.done })
	br := bufio.NewReader(out)
	ready := make(chan error, 1)
	go func() {
		line, err := br.ReadString('\n')
		r.stdout.WriteString(line)
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("first line %q", line)
		}
		ready <- err
		io.Copy(&r.stdout, br)
		r.err = cmd.Wait()
		close(r.done)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not get ready", argv)
	}
	return r
}

// signal sends sig to the process.
func (r *sigRun) signal(sig syscall.Signal) {
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

// exited reports whether the process ends within d.
func (r *sigRun) exited(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		return false
	}
}

// end sends sig and returns how the process ended.
func (r *sigRun) end(sig syscall.Signal) outcome {
	r.t.Helper()
	start := time.Now()
	r.signal(sig)
	if !r.exited(30 * time.Second) {
		r.t.Fatalf("the process did not end after %v", sig)
	}
	o := outcome{stdout: r.stdout.String(), stderr: r.stderr.String(), code: r.cmd.ProcessState.ExitCode(), took: time.Since(start)}
	if ws, ok := r.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		o.signal = ws.Signal()
	}
	return o
}

// agentEnv is the environment of the agent's runs: listening on loopback, the server srv.
func agentEnv(srv string, more ...string) []string {
	return append([]string{"LIVECOV_AGENT_ADDR=127.0.0.1:0", "LIVECOV_SERVER=" + srv, "LIVECOV_HEARTBEAT=1h"}, more...)
}

// withDefaultINT returns argv run so that SIGINT has its default action, as in a terminal,
// when this test runs with SIGINT ignored (as a background job of a shell does).
func withDefaultINT(t *testing.T, argv ...string) []string {
	t.Helper()
	if !signal.Ignored(syscall.SIGINT) {
		return argv
	}
	if exec.Command("env", "--default-signal=INT", "true").Run() != nil {
		t.Skip("SIGINT is ignored here, and env cannot reset it")
	}
	return append([]string{"env", "--default-signal=INT"}, argv...)
}

// testSignalDeliversTheLastCounters: a program that has no signal handler, killed by SIGTERM
// or SIGINT, delivers its counters, and dies of the signal with the output of the program
// that `go build` builds.
func testSignalDeliversTheLastCounters(t *testing.T, p sigProgs) {
	want := [][][]uint32{{{0, 0, 0, 5, 0, 0}, {0}, {0, 1}}}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		sig := sig
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			srv := newFinalServer(t, false)
			plain := startSig(t, withDefaultINT(t, p.workPlain), agentEnv(srv.URL)...).end(sig)
			if plain.signal != sig || plain.stdout != "ready\n" {
				t.Fatalf("the plain program: %+v", plain)
			}
			got := startSig(t, withDefaultINT(t, p.workAgent), agentEnv(srv.URL)...).end(sig)
			if got.signal != plain.signal || got.code != plain.code || got.stdout != plain.stdout || got.stderr != "" {
				t.Errorf("with livecov: %+v; plain: %+v", got, plain)
			}
			if c := srv.counts(t); !reflect.DeepEqual(c, want) {
				t.Errorf("final deliveries %v, want %v", c, want)
			}
		})
	}
}

// testSignalIgnoredAtStart: a SIGINT ignored when the program starts stays ignored; SIGTERM
// then delivers and ends it.
func testSignalIgnoredAtStart(t *testing.T, p sigProgs) {
	srv := newFinalServer(t, false)
	var outcomes []outcome
	for _, prog := range []string{p.workPlain, p.workAgent} {
		r := startSig(t, []string{"sh", "-c", `trap "" INT; exec "$0"`, prog}, agentEnv(srv.URL)...)
		r.signal(syscall.SIGINT)
		if r.exited(500 * time.Millisecond) {
			t.Fatalf("%s ended by an ignored SIGINT: %v", prog, r.err)
		}
		if c := srv.counts(t); len(c) != 0 {
			t.Fatalf("%s delivered its counters on an ignored SIGINT", prog)
		}
		outcomes = append(outcomes, r.end(syscall.SIGTERM))
	}
	plain, got := outcomes[0], outcomes[1]
	if plain.signal != syscall.SIGTERM || got.signal != plain.signal || got.stdout != plain.stdout || got.stderr != "" {
		t.Errorf("with livecov: %+v; plain: %+v", got, plain)
	}
	if c := srv.counts(t); !reflect.DeepEqual(c, [][][]uint32{{{0, 0, 0, 5, 0, 0}, {0}, {0, 1}}}) {
		t.Errorf("final deliveries %v", c)
	}
}

// testSignalsOff: LIVECOV_SIGNALS=off leaves Go's default handling: SIGTERM kills the program
// at once, and nothing is delivered.
func testSignalsOff(t *testing.T, p sigProgs) {
	srv := newFinalServer(t, false)
	got := startSig(t, []string{p.workAgent}, agentEnv(srv.URL, "LIVECOV_SIGNALS=off")...).end(syscall.SIGTERM)
	if got.signal != syscall.SIGTERM || got.stdout != "ready\n" || got.stderr != "" {
		t.Errorf("outcome %+v", got)
	}
	if c := srv.counts(t); len(c) != 0 {
		t.Errorf("final deliveries %v, want none", c)
	}
}

// testSignalDeliveryIsBounded: against a server that never answers, the process dies of the
// signal after the final timeout; a second signal ends it at once.
func testSignalDeliveryIsBounded(t *testing.T, p sigProgs) {
	srv := newFinalServer(t, true)
	got := startSig(t, []string{p.workAgent}, agentEnv(srv.URL, "LIVECOV_FINAL_TIMEOUT=1s")...).end(syscall.SIGTERM)
	if got.signal != syscall.SIGTERM || got.stdout != "ready\n" || got.stderr != "" {
		t.Errorf("outcome %+v", got)
	}
	if got.took < 900*time.Millisecond || got.took > 10*time.Second {
		t.Errorf("the process ended %v after SIGTERM, want about the final timeout (1s)", got.took)
	}

	r := startSig(t, []string{p.workAgent}, agentEnv(srv.URL, "LIVECOV_FINAL_TIMEOUT=1m")...)
	r.signal(syscall.SIGTERM)
	if r.exited(300 * time.Millisecond) {
		t.Fatalf("the process ended before its final delivery: %v", r.err)
	}
	// The second signal, SIGINT, cuts the delivery short; the process dies of the first.
	got = r.end(syscall.SIGINT)
	if got.signal != syscall.SIGTERM || got.stdout != "ready\n" || got.stderr != "" || got.took > 10*time.Second {
		t.Errorf("after a second signal: %+v", got)
	}

	// The host runs on while the agent delivers; if main returns then, the process still
	// dies of the signal, as it would have at once without livecov.
	got = startSig(t, []string{p.workAgent}, agentEnv(srv.URL, "LIVECOV_FINAL_TIMEOUT=1s", "SIGPROG_SLEEP=300ms")...).end(syscall.SIGTERM)
	if got.signal != syscall.SIGTERM || got.stderr != "" || got.took < 900*time.Millisecond {
		t.Errorf("main returned during the delivery: %+v", got)
	}
}

// testSignalsOfAHostWithAHandler: a program that imports os/signal and handles SIGTERM itself
// takes it once, as without livecov, and ends as it would: by returning from main, which
// delivers the counters, or by os.Exit(3).
func testSignalsOfAHostWithAHandler(t *testing.T, p sigProgs) {
	for _, how := range []string{"return", "exit3"} {
		how := how
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			srv := newFinalServer(t, false)
			env := agentEnv(srv.URL, "SIGPROG="+how)
			plain := startSig(t, []string{p.handlerPlain}, env...).end(syscall.SIGTERM)
			wantCode := map[string]int{"return": 0, "exit3": 3}[how]
			if plain.signal != 0 || plain.code != wantCode || plain.stdout != "ready\nstopping: terminated\n" {
				t.Fatalf("the plain program: %+v", plain)
			}
			got := startSig(t, []string{p.handlerAgent}, env...).end(syscall.SIGTERM)
			if got.signal != 0 || got.code != plain.code || got.stdout != plain.stdout || got.stderr != "" {
				t.Errorf("with livecov: %+v; plain: %+v", got, plain)
			}
			var want [][][]uint32
			if how == "return" {
				want = [][][]uint32{{{1, 0, 0, 0, 0, 0}, {1}, {0, 0}}}
			}
			if c := srv.counts(t); !reflect.DeepEqual(c, want) {
				t.Errorf("final deliveries %v, want %v", c, want)
			}
		})
	}
}

// TestSignalsNeedSomethingToDo: without a server or LIVECOV_DIR, the agent takes no signal.
func TestSignalsNeedSomethingToDo(t *testing.T) {
	a := &agent{cfg: config{addr: "off", final: time.Second}}
	if a.hasEnd() {
		t.Error("an agent without a server or a directory has something to do at the end")
	}
	a = &agent{cfg: config{addr: ":0", server: "http://x", final: 0}}
	if a.hasEnd() {
		t.Error("an agent with LIVECOV_FINAL_TIMEOUT=off has something to do at the end")
	}
	a = &agent{cfg: config{addr: ":0", server: "http://x", final: time.Second}}
	if !a.hasEnd() {
		t.Error("an agent with a server has nothing to do at the end")
	}
}
