package agent

import (
	"log"
	"os"
)

// AfterRun is called with the exit code of m.Run() by the TestMain of every test binary that
// `livecov test` builds. It writes the counters of the package under test, importPath, as a
// coverprofile fragment into the directory named by LIVECOV_TEST_DIR, and returns code
// unchanged. livecov merges the fragments of all test binaries into one profile.
//
// Only the package under test is written, as `go test -coverprofile` does: the binary also
// holds instrumented copies of the packages it imports, whose counts belong to their own
// tests. AfterRun never panics; when it cannot write, the package's blocks are missing from
// the fragment and livecov reports them as not covered.
func AfterRun(code int, importPath string) (result int) {
	result = code
	defer func() { recover() }()
	dir := os.Getenv("LIVECOV_TEST_DIR")
	if dir == "" {
		return
	}
	// Test binaries normally get no boundary, so set-mode values are 0 or 1; appendProfile
	// writes any other stamp as 1 anyway.
	m, counts, _, err := std.counters()
	if err != nil {
		logf(stdLogger(), "cannot write test coverage: %v", err)
		return
	}
	sub := &metadata{Build: m.Build, Mode: m.Mode}
	var subCounts [][]uint32
	for i, f := range m.Files {
		if pkgPath(f.Name) == importPath {
			sub.Files = append(sub.Files, f)
			subCounts = append(subCounts, counts[i])
		}
	}
	text := appendProfile(nil, m.Mode, sub, subCounts)
	f, err := os.CreateTemp(dir, "fragment-*.cov")
	if err != nil {
		logf(stdLogger(), "cannot write test coverage: %v", err)
		return
	}
	if _, err := f.Write(text); err != nil {
		logf(stdLogger(), "cannot write test coverage: %v", err)
	}
	f.Close()
	return
}

// stdLogger is the debug logger of this process's agent, if any.
func stdLogger() *log.Logger {
	if stdAgent == nil {
		return nil
	}
	return stdAgent.cfg.logger
}
