package agent

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
)

// writeBody writes body as a successful answer to r: gzip-compressed, with
// "Content-Encoding: gzip", when r's Accept-Encoding allows gzip and compressing makes it
// smaller; as it is otherwise. The answer says "Vary: Accept-Encoding" either way. The
// caller sets the other header fields.
func writeBody(w http.ResponseWriter, r *http.Request, body []byte) {
	hdr := w.Header()
	hdr.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header) {
		if gz, ok := gzipBytes(body); ok && len(gz) < len(body) {
			hdr.Set("Content-Encoding", "gzip")
			body = gz
		}
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// gzipBytes compresses b at gzip's fastest level: the agent shares its host's CPUs, and the
// fastest level takes most of what a slower one would (a coverprofile's lines are alike).
func gzipBytes(b []byte) ([]byte, bool) {
	var buf bytes.Buffer
	buf.Grow(len(b)/8 + 64)
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, false
	}
	if _, err := zw.Write(b); err != nil {
		return nil, false
	}
	if err := zw.Close(); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// acceptsGzip reports whether the Accept-Encoding fields of h allow a gzip-coded answer, as
// RFC 9110 (section 12.5.3) reads them: a comma-separated list of codings, each with an
// optional weight ";q=" from 0 to 1. gzip is allowed if it is listed ("gzip", or its alias
// "x-gzip", in any case) with a weight above 0, or, if it is not listed, if "*" is, with a
// weight above 0. A weight of 0 means "not acceptable": a coding listed with weight 0 anywhere
// is refused, whatever else is listed. An element that does not parse (a weight that is not
// a number from 0 to 1 with at most three decimals) counts for nothing. Without the field,
// or with an empty one, the answer is not compressed.
func acceptsGzip(h http.Header) bool {
	// -1: not listed; 0: refused; 1: accepted.
	gz, star := -1, -1
	note := func(v *int, ok bool) {
		switch {
		case !ok:
			*v = 0
		case *v == -1:
			*v = 1
		}
	}
	for _, field := range h.Values("Accept-Encoding") {
		for _, elem := range strings.Split(field, ",") {
			coding, q, ok := parseCoding(elem)
			if !ok {
				continue
			}
			switch coding {
			case "gzip", "x-gzip":
				note(&gz, q > 0)
			case "*":
				note(&star, q > 0)
			}
		}
	}
	if gz != -1 {
		return gz == 1
	}
	return star == 1
}

// parseCoding splits one element of Accept-Encoding into its coding, lower-cased, and its
// weight in thousandths (1000 when it has none). ok is false for an element that does not
// parse.
func parseCoding(elem string) (coding string, q int, ok bool) {
	parts := strings.Split(elem, ";")
	coding = strings.ToLower(strings.Trim(parts[0], " \t"))
	if coding == "" {
		return "", 0, false
	}
	q = 1000
	for _, p := range parts[1:] {
		p = strings.Trim(p, " \t")
		eq := strings.IndexByte(p, '=')
		if eq < 0 {
			return "", 0, false
		}
		name, value := strings.Trim(p[:eq], " \t"), strings.Trim(p[eq+1:], " \t")
		if !strings.EqualFold(name, "q") {
			continue // no other parameter is defined; ignore it
		}
		if q, ok = parseWeight(value); !ok {
			return "", 0, false
		}
	}
	return coding, q, true
}

// parseWeight parses an RFC 9110 qvalue ("0", "0.5", "1.000") into thousandths.
func parseWeight(s string) (int, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	whole := int(s[0] - '0')
	frac := s[1:]
	if frac != "" {
		if frac[0] != '.' || len(frac) > 4 {
			return 0, false
		}
		frac = frac[1:]
	}
	q := whole * 1000
	scale := 100
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}
