package agent

import (
	"sort"
	"strconv"
	"strings"
)

// appendProfile appends the Go coverprofile text of the counters to dst:
//
//	mode: set
//	example.com/m/pkg/file.go:12.34,14.2 3 1
//
// one line per block (name:startLine.startCol,endLine.endCol numStmt count), in the order
// `go test -coverprofile` writes them (internal/coverage/cformat): by package import path,
// then file name, then start line, end line, start column, end column and statement count.
// In set mode a count is 0 or 1, as Go writes it: an epoch stamp other than 0 appears as 1.
func appendProfile(dst []byte, mode string, m *metadata, counts [][]uint32) []byte {
	dst = append(dst, "mode: "...)
	dst = append(dst, mode...)
	dst = append(dst, '\n')

	files := make([]int, len(m.Files))
	for i := range files {
		files[i] = i
	}
	sort.SliceStable(files, func(a, b int) bool {
		fa, fb := m.Files[files[a]].Name, m.Files[files[b]].Name
		if pa, pb := pkgPath(fa), pkgPath(fb); pa != pb {
			return pa < pb
		}
		return fa < fb
	})

	var order []int
	for _, f := range files {
		file := m.Files[f]
		order = order[:0]
		for i := range file.Blocks {
			order = append(order, i)
		}
		sort.SliceStable(order, func(a, b int) bool {
			x, y := &file.Blocks[order[a]], &file.Blocks[order[b]]
			// Block fields: startLine, startCol, endLine, endCol, numStmt.
			for _, k := range [...]int{0, 2, 1, 3, 4} {
				if x[k] != y[k] {
					return x[k] < y[k]
				}
			}
			return false
		})
		for _, i := range order {
			b := &file.Blocks[i]
			var count uint32
			if f < len(counts) && i < len(counts[f]) {
				count = counts[f][i]
			}
			if mode == "set" && count != 0 {
				count = 1
			}
			dst = append(dst, file.Name...)
			dst = append(dst, ':')
			dst = strconv.AppendUint(dst, uint64(b[0]), 10)
			dst = append(dst, '.')
			dst = strconv.AppendUint(dst, uint64(b[1]), 10)
			dst = append(dst, ',')
			dst = strconv.AppendUint(dst, uint64(b[2]), 10)
			dst = append(dst, '.')
			dst = strconv.AppendUint(dst, uint64(b[3]), 10)
			dst = append(dst, ' ')
			dst = strconv.AppendUint(dst, uint64(b[4]), 10)
			dst = append(dst, ' ')
			dst = strconv.AppendUint(dst, uint64(count), 10)
			dst = append(dst, '\n')
		}
	}
	return dst
}

// pkgPath is the import path part of a profile file name, importpath/file.go.
func pkgPath(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}
