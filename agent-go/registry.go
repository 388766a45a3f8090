package agent

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// buildInfo is what livecov tells the agent about the build. The generated file zz_build.go
// declares it as the package variable build.
type buildInfo struct {
	ID      string // build id: 64 hex digits naming the metadata
	Mode    string // counter mode: "set", "count" or "atomic"
	Service string // default service name; "" means the binary's base name
	Server  string // server URL baked in at build time; "" for none
	Meta    string // block metadata of the whole build, JSON
	Files   int    // number of instrumented files
	// HostSignals: some package of the build imports os/signal, so the host may handle
	// SIGTERM and SIGINT itself, and the agent leaves every signal alone (signal.go).
	HostSignals bool
}

// std holds the counters of this process's build. Package variables are initialized before
// any init function of a package that imports this one runs, so std is ready for the first
// RegisterFile.
var std = newRegistry(build)

// RegisterFile hands the agent the counter array of instrumented file number index (files are
// numbered from 0 in metadata order). The init function that livecov generates in every
// instrumented package calls it once per file.
//
// RegisterFile is cheap and never panics. It ignores an index out of range, a second
// registration of the same index, and an array whose length is not the file's number of
// blocks in the metadata (checked once the metadata is first needed).
func RegisterFile(index int, counters []uint32) {
	std.add(index, counters)
}

// A registry holds the counter arrays of one build and a parsed view of its metadata.
type registry struct {
	build buildInfo

	mu    sync.Mutex // guards files, sizes and the epochs, and serializes reads with boundaries
	files [][]uint32 // by file index; nil until the file registers
	sizes []int      // blocks per file, set once the metadata is parsed

	// Epochs; see "Epochs and boundaries" in the package documentation.
	epoch     uint32     // the current epoch, from 1
	saved     [][]uint32 // the state at the last boundary (set mode: stamps; else counts); nil before the first
	lastToken string     // the token of the last boundary

	metaOnce sync.Once
	meta     *metadata
	metaErr  error

	gzOnce sync.Once
	gz     []byte
}

// metadata is the parsed form of buildInfo.Meta. Function names and hashes are not needed by
// the agent and are not decoded.
type metadata struct {
	Build string     `json:"build"`
	Mode  string     `json:"mode"`
	Files []metaFile `json:"files"`
}

type metaFile struct {
	Name string `json:"name"`
	// Blocks in counter order: startLine, startCol, endLine, endCol, numStmt, funcIndex.
	Blocks [][6]uint32 `json:"blocks"`
}

func newRegistry(b buildInfo) *registry {
	n := b.Files
	// Every file takes some bytes of metadata, so a larger count is nonsense; refusing it here
	// keeps make from panicking in an init function. The metadata check reports the mismatch.
	if n < 0 || n > len(b.Meta) {
		n = 0
	}
	return &registry{build: b, files: make([][]uint32, n), epoch: 1}
}

func (r *registry) add(index int, counters []uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if index < 0 || index >= len(r.files) || counters == nil || r.files[index] != nil {
		return
	}
	if r.sizes != nil && len(counters) != r.sizes[index] {
		return
	}
	r.files[index] = counters
}

// metadata parses the build's metadata on first use and checks it against the build info.
// Arrays registered before with the wrong length are dropped then.
func (r *registry) metadata() (*metadata, error) {
	r.metaOnce.Do(func() {
		r.metaErr = errors.New("metadata unavailable")
		m := new(metadata)
		if err := json.Unmarshal([]byte(r.build.Meta), m); err != nil {
			r.metaErr = fmt.Errorf("bad build metadata: %v", err)
			return
		}
		switch {
		case m.Build != r.build.ID:
			r.metaErr = fmt.Errorf("bad build metadata: build %q, want %q", m.Build, r.build.ID)
			return
		case m.Mode != r.build.Mode:
			r.metaErr = fmt.Errorf("bad build metadata: mode %q, want %q", m.Mode, r.build.Mode)
			return
		case len(m.Files) != r.build.Files || len(m.Files) != len(r.files):
			r.metaErr = fmt.Errorf("bad build metadata: %d files, want %d", len(m.Files), r.build.Files)
			return
		}
		if _, ok := modeCode(m.Mode); !ok {
			r.metaErr = fmt.Errorf("bad build metadata: unknown mode %q", m.Mode)
			return
		}
		sizes := make([]int, len(m.Files))
		for i, f := range m.Files {
			sizes[i] = len(f.Blocks)
		}
		r.mu.Lock()
		for i, c := range r.files {
			if c != nil && len(c) != sizes[i] {
				r.files[i] = nil
			}
		}
		r.sizes = sizes
		r.mu.Unlock()
		r.meta, r.metaErr = m, nil
	})
	return r.meta, r.metaErr
}

// metaGzip returns the metadata JSON, gzip-compressed on first use.
func (r *registry) metaGzip() []byte {
	r.gzOnce.Do(func() {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(r.build.Meta)) // writes to a bytes.Buffer cannot fail
		zw.Close()
		r.gz = buf.Bytes()
	})
	return r.gz
}

// counters returns every file's values in metadata order, as GET /livecov/v1/counters serves
// them, and the current epoch. In count and atomic mode a value is the counter; in set mode it
// is the block's stamp: the current epoch if the counter is set, else the epoch in which the
// block was last seen hit at a boundary (0: never). Files whose package did not register (it
// is not linked into this binary) read as zeros.
func (r *registry) counters() (*metadata, [][]uint32, uint32, error) {
	m, err := r.metadata()
	if err != nil {
		return nil, nil, 0, err
	}
	// Holding mu for the whole read keeps a boundary from running halfway through it.
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.build.Mode == "set"
	out := r.zeros()
	for i, c := range r.files {
		if len(c) != len(out[i]) { // not registered: add and metadata let no other length in
			continue
		}
		for j := range c {
			v := atomic.LoadUint32(&c[j])
			if set {
				switch {
				case v != 0:
					v = r.epoch
				case r.saved != nil:
					v = r.saved[i][j]
				}
			}
			out[i][j] = v
		}
	}
	return m, out, r.epoch, nil
}

// boundary ends the current epoch and returns the state at the boundary, the epoch that began
// at it, and whether it was applied now. If token names the last boundary applied, nothing is
// applied and the answer is that boundary's again.
//
// In set mode the state at the boundary is, per block, the last epoch in which it was hit (0:
// never): each counter is swapped to zero and, if it was set, the ending epoch is stamped in
// its place. A hit that races with the swap either lands before it, and is stamped with the
// ending epoch, or after it, and sets the counter again for the new one: nothing is lost. In
// count and atomic mode counters are never written: the state at the boundary is a copy of
// them.
//
// The returned slices belong to the registry and must not be modified.
func (r *registry) boundary(token string) (state [][]uint32, epoch uint32, applied bool, err error) {
	if _, err := r.metadata(); err != nil {
		return nil, 0, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.saved != nil && token == r.lastToken {
		return r.saved, r.epoch, false, nil
	}
	if r.epoch == math.MaxUint32 {
		// Stamps must fit in a counter; at one boundary a second this is 136 years away.
		return nil, 0, false, errors.New("no epochs left")
	}
	set := r.build.Mode == "set"
	next := r.zeros()
	for i, c := range r.files {
		if set && r.saved != nil {
			copy(next[i], r.saved[i])
		}
		if len(c) != len(next[i]) {
			continue
		}
		for j := range c {
			if !set {
				next[i][j] = atomic.LoadUint32(&c[j])
			} else if atomic.SwapUint32(&c[j], 0) != 0 {
				next[i][j] = r.epoch
			}
		}
	}
	// A new array rather than an update in place: answers of earlier boundaries may still be
	// holding the old one.
	r.saved, r.lastToken = next, token
	r.epoch++
	return r.saved, r.epoch, true, nil
}

// zeros returns zeroed arrays of the files' sizes, in one allocation. The metadata must have
// been parsed.
func (r *registry) zeros() [][]uint32 {
	total := 0
	for _, n := range r.sizes {
		total += n
	}
	flat := make([]uint32, total)
	out := make([][]uint32, len(r.sizes))
	for i, n := range r.sizes {
		out[i], flat = flat[:n:n], flat[n:]
	}
	return out
}
