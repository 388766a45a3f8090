package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Counters wire format, version 1 (media type application/vnd.livecov.counters).
//
// The answer of GET /livecov/v1/counters and POST /livecov/v1/boundary, and the content of the
// counters files under LIVECOV_DIR. In set mode the values are epoch stamps rather than 0 or 1
// (see "Epochs and boundaries" in the package documentation); they fit the same range. All
// integers are unsigned LEB128 varints ("uvarint", as encoding/binary writes them: 7 bits per
// byte, least significant group first, high bit set on every byte but the last).
//
//	magic      4 bytes  "LCC1"
//	idLen      uvarint  length of the build id in bytes
//	id         idLen bytes, the build id as ASCII (64 lower-case hex digits)
//	mode       1 byte   0 set, 1 count, 2 atomic
//	nfiles     uvarint  number of files, as in the metadata
//	nfiles times, in metadata order:
//	  n        uvarint  number of counters of the file (its number of blocks)
//	  runs, until n counters are covered:
//	    z      uvarint  number of zero counters
//	    k      uvarint  number of non-zero counters that follow them
//	    k times:
//	      v    uvarint  a counter value, 1 to 2^32-1
//
// A file with n = 0 has no runs. A run covers z+k counters and never more than the file has
// left; k = 0 only in a file's last run; a run is never empty (z+k > 0). Nothing follows the
// last file. An encoder may split runs differently (this one emits the fewest), so compare
// decoded counters, not bytes.
//
// Example: build id "ab", mode count, one file with counters [0 0 5 0 1 1 0 0] and one with
// none encodes as
//
//	4c 43 43 31  02 61 62  01  02  08 02 01 05 01 02 01 01 02 00  00
//
// A decoder must check every length against the bytes left and against the metadata before
// allocating, and reject trailing bytes.

// countersContentType is the media type of the counters wire format.
const countersContentType = "application/vnd.livecov.counters"

const countersMagic = "LCC1"

// maxFileCounters bounds the counters of one file a decoder accepts: no Go source file has
// nearly that many blocks.
const maxFileCounters = 1 << 24

// counterSet is the content of the counters wire format.
type counterSet struct {
	Build string
	Mode  string     // "set", "count" or "atomic"
	Files [][]uint32 // counters per file, in metadata order
}

var modes = [...]string{"set", "count", "atomic"}

func modeCode(mode string) (byte, bool) {
	for i, m := range modes {
		if m == mode {
			return byte(i), true
		}
	}
	return 0, false
}

// encodeCounters appends the wire form of s to dst.
func encodeCounters(dst []byte, s counterSet) ([]byte, error) {
	mode, ok := modeCode(s.Mode)
	if !ok {
		return dst, fmt.Errorf("unknown counter mode %q", s.Mode)
	}
	dst = append(dst, countersMagic...)
	dst = binary.AppendUvarint(dst, uint64(len(s.Build)))
	dst = append(dst, s.Build...)
	dst = append(dst, mode)
	dst = binary.AppendUvarint(dst, uint64(len(s.Files)))
	for _, c := range s.Files {
		dst = binary.AppendUvarint(dst, uint64(len(c)))
		for i := 0; i < len(c); {
			z := i
			for z < len(c) && c[z] == 0 {
				z++
			}
			k := z
			for k < len(c) && c[k] != 0 {
				k++
			}
			dst = binary.AppendUvarint(dst, uint64(z-i))
			dst = binary.AppendUvarint(dst, uint64(k-z))
			for _, v := range c[z:k] {
				dst = binary.AppendUvarint(dst, uint64(v))
			}
			i = k
		}
	}
	return dst, nil
}

// decodeCounters parses the wire form produced by encodeCounters.
func decodeCounters(b []byte) (counterSet, error) {
	var s counterSet
	d := decoder{b: b}
	if len(b) < len(countersMagic) || string(b[:len(countersMagic)]) != countersMagic {
		return s, errors.New("counters: bad magic")
	}
	d.b = b[len(countersMagic):]
	n := d.uvarint(uint64(len(d.b)))
	if d.err == nil {
		s.Build = string(d.b[:n])
		d.b = d.b[n:]
	}
	if d.err == nil {
		if len(d.b) == 0 {
			d.fail("truncated")
		} else if int(d.b[0]) >= len(modes) {
			d.fail(fmt.Sprintf("unknown mode %d", d.b[0]))
		} else {
			s.Mode = modes[d.b[0]]
			d.b = d.b[1:]
		}
	}
	// Every file takes at least one byte.
	nfiles := d.uvarint(uint64(len(d.b)))
	if d.err == nil {
		s.Files = make([][]uint32, nfiles)
	}
	for f := range s.Files {
		n := d.uvarint(maxFileCounters)
		if d.err != nil {
			break
		}
		c := make([]uint32, 0, n)
		for uint64(len(c)) < n && d.err == nil {
			left := n - uint64(len(c))
			z := d.uvarint(left)
			k := d.uvarint(left - z)
			switch {
			case d.err != nil:
			case k == 0 && z != left:
				d.fail("run without non-zero counters before the end of a file")
			default:
				c = c[:uint64(len(c))+z]
				for ; k > 0 && d.err == nil; k-- {
					v := d.uvarint(1<<32 - 1)
					if v == 0 && d.err == nil {
						d.fail("zero in a run of non-zero counters")
					}
					c = append(c, uint32(v))
				}
			}
		}
		s.Files[f] = c
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d bytes after the last file", len(d.b)))
	}
	if d.err != nil {
		return counterSet{}, d.err
	}
	return s, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New("counters: " + msg)
	}
}

// uvarint reads one uvarint no larger than limit.
func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.fail("truncated")
		return 0
	case n < 0:
		d.fail("uvarint overflows 64 bits")
		return 0
	case v > limit:
		d.fail(fmt.Sprintf("value %d out of range (at most %d)", v, limit))
		return 0
	}
	d.b = d.b[n:]
	return v
}
