package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// handler serves the agent's endpoints for one registry.
type handler struct {
	reg    *registry
	secret func() string // the process secret, made on first use; nil, or "", accepts nothing
	token  string        // LIVECOV_TOKEN, accepted as well as the secret; "" for none
	log    *log.Logger   // nil: silent
}

type route struct {
	method string
	serve  func(*handler, http.ResponseWriter, *http.Request)
	// changes is set for endpoints that change the agent's state, which browsers must not be
	// able to reach from another site.
	changes bool
}

// The agent routes by hand rather than with http.ServeMux patterns: how a ServeMux reads a
// pattern depends on the GODEBUG setting of the host's main module (httpmuxgo121).
var routes = map[string]route{
	"/livecov/v1/meta":     {method: http.MethodGet, serve: (*handler).serveMeta},
	"/livecov/v1/counters": {method: http.MethodGet, serve: (*handler).serveCounters},
	"/livecov/v1/boundary": {method: http.MethodPost, serve: (*handler).serveBoundary, changes: true},
	"/livecov/v1/profile":  {method: http.MethodGet, serve: (*handler).serveProfile},
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			logf(h.log, "panic serving %s: %v", r.URL.Path, v)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	// Authentication comes first, so that without the secret or the token nothing is learned,
	// not even which paths exist.
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="livecov"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	rt, ok := routes[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	allow := rt.method
	if rt.method == http.MethodGet {
		allow = "GET, HEAD"
	}
	if r.Method != rt.method && !(r.Method == http.MethodHead && rt.method == http.MethodGet) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed, use "+rt.method)
		return
	}
	if rt.changes && crossSite(r) {
		writeError(w, http.StatusForbidden, "cross-site browser requests are refused")
		return
	}
	rt.serve(h, w, r)
}

// authorized reports whether r carries "Authorization: Bearer X" with X the process secret or
// the configured token.
func (h *handler) authorized(r *http.Request) bool {
	const scheme = "Bearer "
	got := r.Header.Get("Authorization")
	if len(got) < len(scheme) || !strings.EqualFold(got[:len(scheme)], scheme) {
		return false
	}
	// Comparing digests keeps the comparison constant-time in the token's length too.
	sum := sha256.Sum256([]byte(got[len(scheme):]))
	ok := false
	if h.secret != nil {
		if s := h.secret(); s != "" && sameDigest(sum, s) {
			ok = true
		}
	}
	if h.token != "" && sameDigest(sum, h.token) {
		ok = true
	}
	return ok
}

func sameDigest(sum [sha256.Size]byte, s string) bool {
	want := sha256.Sum256([]byte(s))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

// crossSite reports whether r looks like a request that a browser sends on behalf of a page
// of another site. Browsers send Origin with every POST and every cross-origin request, and
// Sec-Fetch-Site (to secure and local origins) with every request; curl and the livecov
// server send neither. A page cannot make a browser send Authorization to another site without
// that site's consent in a CORS preflight, which the agent never gives, so this is defence in
// depth.
func crossSite(r *http.Request) bool {
	if _, ok := r.Header["Origin"]; ok {
		return true
	}
	for _, v := range r.Header.Values("Sec-Fetch-Site") {
		if v != "same-origin" && v != "none" {
			return true
		}
	}
	return false
}

// serveMeta answers the metadata gzip-compressed whatever the request's Accept-Encoding says,
// as it always has (docs/COUNTERS.md): it is compressed once and the same bytes are served
// for the life of the process.
func (h *handler) serveMeta(w http.ResponseWriter, r *http.Request) {
	body := h.reg.metaGzip()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Encoding", "gzip")
	hdr.Set("Livecov-Build", h.reg.build.ID)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func (h *handler) serveCounters(w http.ResponseWriter, r *http.Request) {
	_, values, epoch, err := h.reg.counters()
	if err != nil {
		h.fail(w, err)
		return
	}
	h.writeCounters(w, r, values, epoch)
}

// maxBoundaryToken is the longest boundary token accepted, in bytes.
const maxBoundaryToken = 128

// serveBoundary applies the boundary named by the query parameter token and answers with the
// state at the boundary. A boundary destroys nothing, so an answer that is never delivered
// needs no undoing: the server retries with the same token and gets the same answer.
func (h *handler) serveBoundary(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	tok := q["token"]
	if err != nil || len(tok) != 1 || !validBoundaryToken(tok[0]) {
		writeError(w, http.StatusBadRequest, "want one query parameter token of 1 to "+
			strconv.Itoa(maxBoundaryToken)+" ASCII letters, digits, '-', '_' or '.'")
		return
	}
	state, epoch, applied, err := h.reg.boundary(tok[0])
	if err != nil {
		h.fail(w, err)
		return
	}
	if applied {
		logf(h.log, "boundary %s: epoch %d begins", tok[0], epoch)
	} else {
		logf(h.log, "boundary %s: already applied, answering it again", tok[0])
	}
	h.writeCounters(w, r, state, epoch)
}

func validBoundaryToken(s string) bool {
	if len(s) == 0 || len(s) > maxBoundaryToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// writeCounters answers values in the counters format, gzip-compressed if r accepts it: the
// same values give the same uncompressed bytes.
func (h *handler) writeCounters(w http.ResponseWriter, r *http.Request, values [][]uint32, epoch uint32) {
	body, err := encodeCounters(nil, counterSet{Build: h.reg.build.ID, Mode: h.reg.build.Mode, Files: values})
	if err != nil {
		h.fail(w, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", countersContentType)
	hdr.Set("Livecov-Build", h.reg.build.ID)
	hdr.Set("Livecov-Epoch", strconv.FormatUint(uint64(epoch), 10))
	hdr.Set("Cache-Control", "no-store")
	writeBody(w, r, body)
}

func (h *handler) serveProfile(w http.ResponseWriter, r *http.Request) {
	m, values, _, err := h.reg.counters()
	if err != nil {
		h.fail(w, err)
		return
	}
	body := appendProfile(nil, h.reg.build.Mode, m, values)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Livecov-Build", h.reg.build.ID)
	hdr.Set("Cache-Control", "no-store")
	writeBody(w, r, body)
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	logf(h.log, "%v", err)
	writeError(w, http.StatusInternalServerError, err.Error())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}
