package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"strconv"
	"strings"
)

// handler serves the agent's endpoints for one registry.
type handler struct {
	reg   *registry
	token string      // required bearer token; "" for none
	log   *log.Logger // nil: silent
}

type route struct {
	method string
	serve  func(*handler, http.ResponseWriter, *http.Request)
}

// The agent routes by hand rather than with http.ServeMux patterns: how a ServeMux reads a
// pattern depends on the GODEBUG setting of the host's main module (httpmuxgo121).
var routes = map[string]route{
	"/livecov/v1/meta":     {http.MethodGet, (*handler).serveMeta},
	"/livecov/v1/counters": {http.MethodGet, (*handler).serveCounters},
	"/livecov/v1/reset":    {http.MethodPost, (*handler).serveReset},
	"/livecov/v1/profile":  {http.MethodGet, (*handler).serveProfile},
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			logf(h.log, "panic serving %s: %v", r.URL.Path, v)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	// Authentication comes first, so that without the token nothing is learned, not even
	// which paths exist.
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
	rt.serve(h, w, r)
}

func (h *handler) authorized(r *http.Request) bool {
	if h.token == "" {
		return true
	}
	const scheme = "Bearer "
	got := r.Header.Get("Authorization")
	if len(got) < len(scheme) || !strings.EqualFold(got[:len(scheme)], scheme) {
		return false
	}
	// Comparing digests keeps the comparison constant-time in the token's length too.
	a := sha256.Sum256([]byte(got[len(scheme):]))
	b := sha256.Sum256([]byte(h.token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

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
	_, counts, err := h.reg.take(loadCounter)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.writeCounters(w, counts)
}

// serveReset swaps every counter to zero and answers with the values it took. If the answer
// cannot be sent whole, the values are added back: a reset loses nothing that the client did
// not receive. (What a client does with an answer it did receive is up to the client.)
func (h *handler) serveReset(w http.ResponseWriter, r *http.Request) {
	_, counts, err := h.reg.take(swapCounter)
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := h.writeCounters(w, counts); err != nil {
		logf(h.log, "reset: answer not delivered, counters restored: %v", err)
		h.reg.restore(counts)
	}
}

func (h *handler) writeCounters(w http.ResponseWriter, counts [][]uint32) error {
	body, err := encodeCounters(nil, counterSet{Build: h.reg.build.ID, Mode: h.reg.build.Mode, Files: counts})
	if err != nil {
		h.fail(w, err)
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", countersContentType)
	hdr.Set("Livecov-Build", h.reg.build.ID)
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if _, err := w.Write(body); err != nil {
		return err
	}
	// Flushing reports a connection that broke before the whole answer was sent; the client
	// then cannot have a complete answer (its length is declared), so nothing is counted twice.
	if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (h *handler) serveProfile(w http.ResponseWriter, r *http.Request) {
	m, counts, err := h.reg.take(loadCounter)
	if err != nil {
		h.fail(w, err)
		return
	}
	body := appendProfile(nil, h.reg.build.Mode, m, counts)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Livecov-Build", h.reg.build.ID)
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
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
