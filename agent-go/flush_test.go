package agent

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// diskConfig is a configuration that keeps the counters in dir and does not listen.
func diskConfig(dir string, flush time.Duration) config {
	cfg := testConfig()
	cfg.addr = "off"
	cfg.dir = dir
	cfg.flush = flush
	return cfg
}

// useStdAgent makes a the process's agent, the one Flush writes, until the test ends.
func useStdAgent(t *testing.T, a *agent) {
	t.Helper()
	old := stdAgent
	stdAgent = a
	t.Cleanup(func() { stdAgent = old })
}

// countersPath is the counters file of agent a.
func countersPath(a *agent) string {
	return filepath.Join(a.cfg.dir, a.cfg.service+"-"+a.instanceID()+".lcc")
}

// readCountersFile decodes a counters file.
func readCountersFile(path string) (counterSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return counterSet{}, err
	}
	return decodeCounters(b)
}

// httpGet returns the body of a successful GET authorized with token.
func httpGet(url, token string) ([]byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestDiskPeriodicWrites(t *testing.T) {
	dir := t.TempDir()
	reg, files := testRegistry(t, "count")
	a := startTest(t, diskConfig(dir, 20*time.Millisecond), reg)
	path := countersPath(a)
	if !strings.HasPrefix(filepath.Base(path), "svc-") || len(filepath.Base(path)) != len("svc-.lcc")+32 {
		t.Fatalf("counters file %s, want svc-<32 hex digits>.lcc", path)
	}

	atomic.StoreUint32(&files[0][1], 3)
	atomic.StoreUint32(&files[2][0], 1)
	want := [][]uint32{{0, 3, 0, 0, 0, 0}, {0}, {1, 0}}
	var got counterSet
	waitFor(t, "the first periodic write", func() bool {
		var err error
		got, err = readCountersFile(path)
		return err == nil && equalCounts(got.Files, want)
	})
	if got.Build != testBuildID || got.Mode != "count" {
		t.Errorf("file of build %q, mode %q", got.Build, got.Mode)
	}

	// The file follows the counters.
	atomic.AddUint32(&files[0][1], 2)
	atomic.StoreUint32(&files[1][0], 9)
	want = [][]uint32{{0, 5, 0, 0, 0, 0}, {9}, {1, 0}}
	waitFor(t, "a later periodic write", func() bool {
		got, err := readCountersFile(path)
		return err == nil && equalCounts(got.Files, want)
	})
	// The periodic writes agree with what the agent serves.
	_, served, _, err := reg.counters()
	if err != nil || !equalCounts(served, want) {
		t.Errorf("registry holds %v (%v), want %v", served, err, want)
	}
}

func TestFlushWritesNow(t *testing.T) {
	dir := t.TempDir()
	reg, files := testRegistry(t, "atomic")
	a := startTest(t, diskConfig(dir, time.Hour), reg) // no periodic write during the test
	useStdAgent(t, a)
	path := countersPath(a)

	atomic.StoreUint32(&files[0][5], 7)
	Flush()
	got, err := readCountersFile(path)
	if err != nil {
		t.Fatalf("after Flush: %v", err)
	}
	if want := [][]uint32{{0, 0, 0, 0, 0, 7}, {0}, {0, 0}}; !equalCounts(got.Files, want) || got.Mode != "atomic" {
		t.Errorf("counters %v (%s), want %v", got.Files, got.Mode, want)
	}
	// Flush writes the metadata too, even if the writer has not yet got to it.
	if _, err := os.Stat(filepath.Join(dir, testBuildID+".meta.json.gz")); err != nil {
		t.Errorf("no metadata after Flush: %v", err)
	}

	atomic.AddUint32(&files[0][5], 1)
	atomic.StoreUint32(&files[2][1], 2)
	Flush()
	got, err = readCountersFile(path)
	if want := [][]uint32{{0, 0, 0, 0, 0, 8}, {0}, {0, 2}}; err != nil || !equalCounts(got.Files, want) {
		t.Errorf("after the second Flush: %v %v, want %v", got.Files, err, want)
	}
}

// In set mode the counters file holds the stamps, as GET /livecov/v1/counters serves them.
func TestDiskHoldsStamps(t *testing.T) {
	dir := t.TempDir()
	cfg := diskConfig(dir, time.Hour)
	cfg.addr = "127.0.0.1:0"
	reg, files := testRegistry(t, "set")
	a := startTest(t, cfg, reg)
	url := agentURL(t, a)
	hit(&files[0][0])
	hit(&files[1][0])
	getCounters(t, "POST", url+"/livecov/v1/boundary?token=disk", a.processSecret())
	hit(&files[0][0])
	hit(&files[2][1])
	a.disk.write(true)
	got, err := readCountersFile(countersPath(a))
	if want := [][]uint32{{2, 0, 0, 0, 0, 0}, {1}, {0, 2}}; err != nil || got.Mode != "set" || !equalCounts(got.Files, want) {
		t.Errorf("counters file holds %v (%s, %v), want %v", got.Files, got.Mode, err, want)
	}
	file, _ := os.ReadFile(countersPath(a))
	if _, _, served := fetchCounters(t, "GET", url+"/livecov/v1/counters", a.processSecret()); !bytes.Equal(file, served) {
		t.Errorf("the counters file differs from what GET /livecov/v1/counters serves:\n% x\n% x", file, served)
	}
}

func TestDiskMetaWrittenOnce(t *testing.T) {
	dir := t.TempDir()
	reg, _ := testRegistry(t, "set")
	a := startTest(t, diskConfig(dir, time.Hour), reg)
	a.disk.write(true)
	meta := filepath.Join(dir, testBuildID+".meta.json.gz")
	gz, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gz, reg.metaGzip()) {
		t.Error("the metadata file differs from what GET /livecov/v1/meta serves")
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	json, err := io.ReadAll(zr)
	if err != nil || string(json) != reg.build.Meta {
		t.Errorf("the metadata file gunzips to %.80q (%v), want the build's metadata", json, err)
	}

	// Neither this agent nor another instance of the build writes it again.
	if err := os.WriteFile(meta, []byte("marker"), 0644); err != nil {
		t.Fatal(err)
	}
	a.disk.write(true)
	b := startTest(t, diskConfig(dir, time.Hour), reg)
	b.disk.write(true)
	if got, _ := os.ReadFile(meta); string(got) != "marker" {
		t.Errorf("the metadata file was written again: %.40q", got)
	}
	lcc, _ := filepath.Glob(filepath.Join(dir, "*.lcc"))
	if len(lcc) != 2 || a.instanceID() == b.instanceID() {
		t.Errorf("two instances wrote %v", lcc)
	}
	if names := dirNames(t, dir); len(names) != 3 {
		t.Errorf("files in the directory: %v, want the metadata and two counters files", names)
	}
}

func TestDiskCreatesTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	reg, _ := testRegistry(t, "set")
	a := startTest(t, diskConfig(dir, time.Hour), reg)
	a.disk.write(true)
	if _, err := readCountersFile(countersPath(a)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("directory not created: %v", err)
	}
}

func TestDiskUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0644); err != nil {
		t.Fatal(err)
	}
	cfg := diskConfig(filepath.Join(file, "dir"), 10*time.Millisecond) // under a regular file
	cfg.addr = "127.0.0.1:0"
	reg, files := testRegistry(t, "set")
	files[1][0] = 1

	before := settledGoroutines()
	var problems []string
	out := captureOutput(t, func() {
		a := start(cfg, reg)
		<-a.ready
		useStdAgent(t, a)
		begin := time.Now()
		Flush()
		Flush()
		if d := time.Since(begin); d > time.Second {
			problems = append(problems, "Flush took "+d.String())
		}
		time.Sleep(50 * time.Millisecond) // a few failed periodic writes
		// The host is unaffected: the agent still serves its counters.
		if a.addr == nil {
			problems = append(problems, "agent not listening")
		} else if resp, err := httpGet("http://"+a.addr.String()+"/livecov/v1/counters", a.processSecret()); err != nil {
			problems = append(problems, "counters: "+err.Error())
		} else if s, err := decodeCounters(resp); err != nil || s.Files[1][0] != 1 {
			problems = append(problems, "counters not served")
		}
		a.close()
	})
	for _, p := range problems {
		t.Error(p)
	}
	if out != "" {
		t.Errorf("the agent wrote to stdout or stderr: %q", out)
	}
	if after := goroutines(before); after > before {
		t.Errorf("%d goroutines after close, %d before", after, before)
	}

	// Under LIVECOV_DEBUG the reason is logged, once however often the write fails.
	var logged syncBuffer
	cfg.addr = "off"
	cfg.logger = newTestLogger(&logged)
	a := startTest(t, cfg, reg)
	a.disk.write(true)
	a.disk.write(true)
	waitFor(t, "the error in the log", func() bool {
		return strings.Contains(logged.String(), "cannot keep counters in "+cfg.dir)
	})
	time.Sleep(50 * time.Millisecond)
	if n := strings.Count(logged.String(), "cannot keep counters"); n != 1 {
		t.Errorf("the same error logged %d times:\n%s", n, logged.String())
	}
}

func TestFlushWithoutDir(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	before := settledGoroutines()
	a := startTest(t, diskConfig("", time.Millisecond), reg)
	if a.disk != nil {
		t.Fatal("a disk writer without a directory")
	}
	if after := goroutines(before); after > before {
		t.Errorf("%d goroutines with the agent off and no directory, %d before", after, before)
	}
	useStdAgent(t, a)
	begin := time.Now()
	for i := 0; i < 1000; i++ {
		Flush()
	}
	if d := time.Since(begin); d > 100*time.Millisecond {
		t.Errorf("1000 Flush calls without LIVECOV_DIR took %v", d)
	}

	// With a directory, the writer is the agent's one goroutine once it stops listening.
	b := startTest(t, diskConfig(t.TempDir(), time.Hour), reg)
	if b.disk == nil {
		t.Fatal("no disk writer with a directory")
	}
	if after := goroutines(before + 1); after != before+1 {
		t.Errorf("%d goroutines with a disk writer, want %d", after, before+1)
	}

	// Flush never panics, even without an agent.
	useStdAgent(t, nil)
	Flush()
}

func TestDirFromEnv(t *testing.T) {
	for _, k := range []string{"LIVECOV_DIR", "LIVECOV_FLUSH", "LIVECOV_TEST_DIR", "LIVECOV_DEBUG"} {
		t.Setenv(k, "")
	}
	b := testBuild("set")
	if cfg := configFromEnv(b); cfg.dir != "" || cfg.flush != 10*time.Second {
		t.Errorf("defaults: dir %q, flush %v", cfg.dir, cfg.flush)
	}
	t.Setenv("LIVECOV_DIR", "off")
	if cfg := configFromEnv(b); cfg.dir != "" {
		t.Errorf("LIVECOV_DIR=off: dir %q", cfg.dir)
	}
	abs, err := filepath.Abs(filepath.Join("some", "dir"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIVECOV_DIR", abs)
	t.Setenv("LIVECOV_FLUSH", "250ms")
	if cfg := configFromEnv(b); cfg.dir != abs || cfg.flush != 250*time.Millisecond {
		t.Errorf("from the environment: dir %q, flush %v", cfg.dir, cfg.flush)
	}
	// A relative directory is made absolute at start: the host may change directory later.
	t.Setenv("LIVECOV_DIR", filepath.Join("some", "dir"))
	if cfg := configFromEnv(b); cfg.dir != abs {
		t.Errorf("relative LIVECOV_DIR: dir %q, want %q", cfg.dir, abs)
	}
	// LIVECOV_DIR works with the agent off.
	t.Setenv("LIVECOV_AGENT_ADDR", "off")
	if cfg := configFromEnv(b); cfg.dir != abs || cfg.addr != "off" {
		t.Errorf("LIVECOV_AGENT_ADDR=off: dir %q", cfg.dir)
	}
	for v, want := range map[string]time.Duration{"nonsense": 10 * time.Second, "1ns": minFlush, "-1s": minFlush, "1m": time.Minute} {
		t.Setenv("LIVECOV_FLUSH", v)
		if cfg := configFromEnv(b); cfg.flush != want {
			t.Errorf("LIVECOV_FLUSH=%s: %v, want %v", v, cfg.flush, want)
		}
	}
}

func TestTestBinariesDoNotFlush(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LIVECOV_TEST_DIR", t.TempDir())
	t.Setenv("LIVECOV_DIR", dir)
	t.Setenv("LIVECOV_AGENT_ADDR", "")
	cfg := configFromEnv(testBuild("set"))
	if cfg.dir != "" {
		t.Fatalf("a test binary keeps its counters in %q", cfg.dir)
	}
	cfg.flush = minFlush
	reg, files := testRegistry(t, "set")
	files[0][0] = 1
	a := startTest(t, cfg, reg)
	useStdAgent(t, a)
	Flush()
	time.Sleep(30 * time.Millisecond)
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("a test binary wrote %v", names)
	}
}

func TestServiceNameSanitized(t *testing.T) {
	for in, want := range map[string]string{
		"svc":                    "svc",
		"My.Svc_2-x":             "My.Svc_2-x",
		"my svc/ä:1":             "my_svc___1",
		"../../etc/passwd":       ".._.._etc_passwd",
		"a\x00b\xffc":            "a_b_c",
		strings.Repeat("s", 300): strings.Repeat("s", maxServiceName),
	} {
		if got := fileNamePart(in, maxServiceName); got != want {
			t.Errorf("fileNamePart(%q) = %q, want %q", in, got, want)
		}
	}

	dir := t.TempDir()
	cfg := diskConfig(dir, time.Hour)
	cfg.service = "my svc/ä:1"
	reg, _ := testRegistry(t, "set")
	a := startTest(t, cfg, reg)
	a.disk.write(true)
	name := "my_svc___1-" + a.instanceID() + ".lcc"
	if _, err := readCountersFile(filepath.Join(dir, name)); err != nil {
		t.Errorf("no counters file %s: %v (files: %v)", name, err, dirNames(t, dir))
	}
}

// TestDiskAtomicReplace reads the counters file over and over while Flush and the periodic
// writer replace it and the counters change: every read must decode, and the counters it
// holds never go back.
func TestDiskAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	reg, files := testRegistry(t, "count")
	a := startTest(t, diskConfig(dir, minFlush), reg)
	useStdAgent(t, a)
	path := countersPath(a)
	Flush()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the program, bumping counters
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			atomic.AddUint32(&files[i%3][0], 1)
			if i%64 == 0 {
				time.Sleep(time.Microsecond)
			}
		}
	}()
	var flushes int64
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			Flush()
			atomic.AddInt64(&flushes, 1)
		}
	}()

	reads := 0
	var last [3]uint32
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		s, err := readCountersFile(path)
		if err != nil {
			t.Errorf("read %d: %v", reads, err)
			break
		}
		reads++
		for f := range last {
			if v := s.Files[f][0]; v < last[f] {
				t.Errorf("read %d: file %d went back from %d to %d", reads, f, last[f], v)
			} else {
				last[f] = v
			}
		}
	}
	close(stop)
	wg.Wait()
	if reads < 10 || atomic.LoadInt64(&flushes) < 10 {
		t.Errorf("only %d reads and %d flushes", reads, atomic.LoadInt64(&flushes))
	}
	// No temporary file is left behind.
	a.close()
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, ".") {
			t.Errorf("temporary file left: %s", n)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	if err := writeFileAtomic(dir, "f", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(dir, "f", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "two" {
		t.Errorf("content %q", b)
	}
	// The mode os.WriteFile gives: 0644 less the umask.
	if err := os.WriteFile(filepath.Join(dir, "g"), nil, 0644); err != nil {
		t.Fatal(err)
	}
	f, err1 := os.Stat(filepath.Join(dir, "f"))
	g, err2 := os.Stat(filepath.Join(dir, "g"))
	if err1 != nil || err2 != nil || f.Mode() != g.Mode() {
		t.Errorf("mode %v, want %v (%v %v)", f.Mode(), g.Mode(), err1, err2)
	}
	os.Remove(filepath.Join(dir, "g"))
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("files %v", names)
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing"), "f", nil); err == nil {
		t.Error("no error writing into a missing directory")
	}
}
