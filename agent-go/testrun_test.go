package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAfterRunWritesOnlyThePackageUnderTest(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LIVECOV_TEST_DIR", dir)
	old := std
	defer func() { std = old }()
	std = newRegistry(testBuild("count"))
	m, err := std.metadata()
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range m.Files {
		c := make([]uint32, len(f.Blocks))
		for j := range c {
			c[j] = uint32(j + 1)
		}
		RegisterFile(i, c)
	}
	pkg := pkgPath(m.Files[1].Name) // two files: pkg0.go and a.go
	if got := AfterRun(3, pkg); got != 3 {
		t.Fatalf("AfterRun changed the exit code: %d", got)
	}
	frags, _ := filepath.Glob(filepath.Join(dir, "*.cov"))
	if len(frags) != 1 {
		t.Fatalf("want one fragment, got %v", frags)
	}
	text, _ := os.ReadFile(frags[0])
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if lines[0] != "mode: "+m.Mode {
		t.Fatalf("first line %q", lines[0])
	}
	want := 0
	for _, f := range m.Files {
		if pkgPath(f.Name) == pkg {
			want += len(f.Blocks)
		}
	}
	if want == 0 || len(lines)-1 != want {
		t.Fatalf("want %d block lines of %s, got %d:\n%s", want, pkg, len(lines)-1, text)
	}
	for _, l := range lines[1:] {
		if pkgPath(l[:strings.IndexByte(l, ':')]) != pkg {
			t.Errorf("line of another package: %s", l)
		}
		if strings.HasSuffix(l, " 0") {
			t.Errorf("registered counters read as zero: %s", l)
		}
	}
}

func TestAfterRunWithoutTestDirDoesNothing(t *testing.T) {
	t.Setenv("LIVECOV_TEST_DIR", "")
	if got := AfterRun(1, "x"); got != 1 {
		t.Fatalf("AfterRun changed the exit code: %d", got)
	}
}

func TestAfterRunSurvivesAnUnwritableDir(t *testing.T) {
	t.Setenv("LIVECOV_TEST_DIR", filepath.Join(t.TempDir(), "missing", "dir"))
	if got := AfterRun(0, "x"); got != 0 {
		t.Fatalf("AfterRun changed the exit code: %d", got)
	}
}

func TestTestBinariesDoNotListen(t *testing.T) {
	t.Setenv("LIVECOV_TEST_DIR", t.TempDir())
	t.Setenv("LIVECOV_AGENT_ADDR", "")
	if cfg := configFromEnv(testBuild("set")); cfg.addr != "off" {
		t.Fatalf("a test binary listens on %q", cfg.addr)
	}
	t.Setenv("LIVECOV_AGENT_ADDR", "127.0.0.1:0")
	if cfg := configFromEnv(testBuild("set")); cfg.addr != "127.0.0.1:0" {
		t.Fatalf("LIVECOV_AGENT_ADDR is not honoured in tests: %q", cfg.addr)
	}
}
