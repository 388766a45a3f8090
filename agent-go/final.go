package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
)

// finalDelivery is the body of POST /api/v1/agents/<instance>/final: the registration (the
// process may end before it ever registered) and the counters as they are at the end.
type finalDelivery struct {
	Registration registration `json:"registration"`
	Counters     string       `json:"counters"` // LCC1, base64
}

// finishOnce makes Finish deliver once, however often it is called.
var finishOnce sync.Once

// Finish is what a program built by livecov runs when its main function returns: livecov's
// build makes `defer Finish()` the first statement of func main. It writes the counters to
// LIVECOV_DIR, as Flush does, and, when the agent has a server, delivers them to it once,
// within LIVECOV_FINAL_TIMEOUT (default 2s), so that what a short-lived process ran reaches
// the server even if no pull came in time. The server then holds the instance as exited and
// counts it in the snapshots of the window it ran in.
//
// Finish never panics, never writes to standard output, and changes nothing of how the
// process ends: it returns, and main's return goes on as without livecov. Like any deferred
// call it does not run when the process ends by os.Exit or a signal; see "Processes that
// stop" in the package documentation.
func Finish() {
	defer func() { recover() }()
	Flush()
	if a := stdAgent; a != nil {
		finishOnce.Do(a.deliverFinal)
	}
}

// deliverFinal sends the counters as they are now to the server, registering the instance
// with them. A server without the build's metadata (no instance of the build was ever read)
// answers 409: the agent sends the metadata, then the counters again.
func (a *agent) deliverFinal() {
	defer a.recoverPanic("final delivery")
	if a.cfg.addr == "off" || a.cfg.server == "" || a.cfg.server == "off" || a.cfg.final <= 0 {
		return
	}
	base, err := serverURL(a.cfg.server)
	if err != nil {
		return
	}
	// No more heartbeats: the server is about to hold the instance as exited, and a heartbeat
	// after that would make it register again.
	a.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.final)
	defer cancel()
	_, values, _, err := a.reg.counters()
	if err != nil {
		logf(a.cfg.logger, "final delivery: %v", err)
		return
	}
	counters, err := encodeCounters(nil, counterSet{Build: a.reg.build.ID, Mode: a.reg.build.Mode, Files: values})
	if err != nil {
		logf(a.cfg.logger, "final delivery: %v", err)
		return
	}
	port := 0
	select {
	case <-a.ready:
		if t, ok := a.addr.(*net.TCPAddr); ok {
			port = t.Port
		}
	default: // still starting: it never served
	}
	body, _ := json.Marshal(finalDelivery{
		Registration: a.registration(port),
		Counters:     base64.StdEncoding.EncodeToString(counters),
	})
	to := base + "/api/v1/agents/" + url.PathEscape(a.instanceID()) + "/final"
	err = a.send(ctx, http.MethodPost, to, "application/json", body)
	var status statusError
	if errors.As(err, &status) && int(status) == http.StatusConflict {
		meta := base + "/api/v1/builds/" + url.PathEscape(a.reg.build.ID)
		if err = a.send(ctx, http.MethodPut, meta, "application/gzip", a.reg.metaGzip()); err == nil {
			err = a.send(ctx, http.MethodPost, to, "application/json", body)
		}
	}
	if err != nil {
		logf(a.cfg.logger, "final delivery to %s: %v", base, err)
		return
	}
	logf(a.cfg.logger, "final counters delivered to %s", base)
}
