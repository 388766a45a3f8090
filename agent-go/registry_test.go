package agent

import (
	"strings"
	"testing"
)

func TestRegistryIgnoresBadRegistrations(t *testing.T) {
	r := newRegistry(testBuild("count"))
	good := make([]uint32, 6)
	r.add(-1, make([]uint32, 6))
	r.add(3, make([]uint32, 1))
	r.add(1<<40, make([]uint32, 1))
	r.add(1, nil)
	r.add(1, make([]uint32, 5)) // file 1 has one block: dropped once the metadata is read
	r.add(0, good)
	r.add(0, make([]uint32, 6)) // the first registration stays
	good[3] = 1

	_, counts, _, err := r.counters()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]uint32{{0, 0, 0, 1, 0, 0}, {0}, {0, 0}}
	if !equalCounts(counts, want) {
		t.Errorf("counters %v, want %v", counts, want)
	}
	// Now that the metadata is known, a wrong length is refused at once, a right one taken.
	r.add(2, make([]uint32, 3))
	right := []uint32{4, 5}
	r.add(1, []uint32{9})
	r.add(2, right)
	_, counts, _, _ = r.counters()
	want = [][]uint32{{0, 0, 0, 1, 0, 0}, {9}, {4, 5}}
	if !equalCounts(counts, want) {
		t.Errorf("counters %v, want %v", counts, want)
	}
}

func TestRegisterFileIgnoresBadIndex(t *testing.T) {
	// The process registry of the test binary (fixture build, three files).
	RegisterFile(-1, make([]uint32, 6))
	RegisterFile(len(testSizes), make([]uint32, 6))
	std.mu.Lock()
	defer std.mu.Unlock()
	if len(std.files) != len(testSizes) {
		t.Fatalf("registry has %d files, want %d", len(std.files), len(testSizes))
	}
	for i, c := range std.files {
		if len(c) == 6 && i != 0 {
			t.Errorf("file %d took a bad registration", i)
		}
	}
}

func TestRegistryBadMetadata(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*buildInfo)
		wants string
	}{
		{"not JSON", func(b *buildInfo) { b.Meta = "{" }, "bad build metadata"},
		{"other build", func(b *buildInfo) { b.ID = strings.Repeat("f", 64) }, "build"},
		{"other mode", func(b *buildInfo) { b.Mode = "count" }, "mode"},
		{"file count", func(b *buildInfo) { b.Files = 2 }, "files"},
		{"absurd file count", func(b *buildInfo) { b.Files = 1 << 40 }, "files"},
		{"negative block field", func(b *buildInfo) { b.Meta = strings.Replace(b.Meta, "[7,1,", "[-7,1,", 1) }, "bad build metadata"},
	} {
		b := testBuild("set")
		tc.edit(&b)
		r := newRegistry(b)
		r.add(0, make([]uint32, 6))
		if _, _, _, err := r.counters(); err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wants)
		}
		if _, _, _, err := r.boundary("x"); err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%s: boundary: error %v, want one containing %q", tc.name, err, tc.wants)
		}
	}
}

// The state that a boundary answers stays as it was while later boundaries run: answers are
// encoded after the registry's lock is released.
func TestBoundaryStateStaysUnchanged(t *testing.T) {
	for _, mode := range []string{"set", "count", "atomic"} {
		r, files := testRegistry(t, mode)
		files[0][1], files[2][0] = 1, 1
		first, epoch, applied, err := r.boundary("a")
		if err != nil || epoch != 2 || !applied {
			t.Fatalf("%s: first boundary: epoch %d, applied %v, %v", mode, epoch, applied, err)
		}
		want := [][]uint32{{0, 1, 0, 0, 0, 0}, {0}, {1, 0}}
		files[0][1], files[1][0] = 1, 1
		if _, epoch, applied, _ := r.boundary("b"); epoch != 3 || !applied {
			t.Errorf("%s: second boundary: epoch %d, applied %v", mode, epoch, applied)
		}
		if _, epoch, applied, _ := r.boundary("b"); epoch != 3 || applied {
			t.Errorf("%s: repeated boundary: epoch %d, applied %v", mode, epoch, applied)
		}
		if !equalCounts(first, want) {
			t.Errorf("%s: the first answer became %v, want %v", mode, first, want)
		}
	}
}

func equalCounts(a, b [][]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}
