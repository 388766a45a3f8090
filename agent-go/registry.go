package agent

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
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

	mu    sync.Mutex
	files [][]uint32 // by file index; nil until the file registers
	sizes []int      // blocks per file, set once the metadata is parsed

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
	return &registry{build: b, files: make([][]uint32, n)}
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

// take returns a copy of every file's counters in metadata order, each value obtained by
// calling read once on the counter: loadCounter to read, swapCounter to reset. Files whose
// package did not register (it is not linked into this binary) read as zeros.
func (r *registry) take(read func(*uint32) uint32) (*metadata, [][]uint32, error) {
	m, err := r.metadata()
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	live := append([][]uint32(nil), r.files...)
	r.mu.Unlock()
	total := 0
	for _, n := range r.sizes {
		total += n
	}
	flat := make([]uint32, total)
	out := make([][]uint32, len(live))
	for i, c := range live {
		n := r.sizes[i]
		out[i], flat = flat[:n:n], flat[n:]
		if len(c) != n { // not registered: add and metadata let no other length in
			continue
		}
		for j := range c {
			out[i][j] = read(&c[j])
		}
	}
	return m, out, nil
}

// restore adds back values that take swapped out, when they could not be handed over.
func (r *registry) restore(values [][]uint32) {
	r.mu.Lock()
	live := append([][]uint32(nil), r.files...)
	r.mu.Unlock()
	set := r.build.Mode == "set"
	for i, c := range live {
		if i >= len(values) || len(values[i]) != len(c) {
			continue
		}
		for j, v := range values[i] {
			switch {
			case v == 0:
			case set:
				atomic.StoreUint32(&c[j], 1)
			default:
				atomic.AddUint32(&c[j], v)
			}
		}
	}
}

func loadCounter(p *uint32) uint32 { return atomic.LoadUint32(p) }
func swapCounter(p *uint32) uint32 { return atomic.SwapUint32(p, 0) }
