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
	"time"
)

// finalDelivery is the body of POST /api/v1/agents/<instance>/final: the registration (the
// process may end before it ever registered) and the counters as they are at the end.
type finalDelivery struct {
	Registration registration `json:"registration"`
	Counters     string       `json:"counters"` // LCC1, base64
}

var (
	// finishOnce makes Finish deliver once, however often it is called, and from whichever
	// goroutine: main's deferred Finish or the end of a signal (signal.go).
	finishOnce sync.Once
	// finalCtx bounds the final delivery besides LIVECOV_FINAL_TIMEOUT: a second signal
	// cancels it (cutFinal), to end the process at once.
	finalCtx, cutFinal = context.WithCancel(context.Background())
	// dying is closed when the agent has taken a signal that ends the process (signal.go).
	dying = make(chan struct{})
)

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
// stop" in the package documentation (SIGTERM and SIGINT that the agent takes do what Finish
// does, see "Signals"). The one exception: once the agent has taken such a signal, Finish
// does not return, so that the process dies of the signal, as it would have without livecov.
func Finish() {
	defer func() { recover() }()
	finish()
	select {
	case <-dying:
		// The signal ends the process as soon as the delivery is done: main must not return
		// first, which the process, dead without livecov, could not have done.
		for {
			time.Sleep(time.Hour)
		}
	default:
	}
}

// finish writes the counters to LIVECOV_DIR and delivers them to the server, once.
func finish() {
	defer func() { recover() }()
	Flush()
	if a := stdAgent; a != nil {
		finishOnce.Do(a.deliverFinal)
	}
}

// hasEnd reports whether the agent has anything to do when the process ends: counters to
// write to LIVECOV_DIR or to deliver to a server.
func (a *agent) hasEnd() bool {
	return a.disk != nil || a.delivers()
}

// delivers reports whether the agent delivers its last counters to a server.
func (a *agent) delivers() bool {
	return a.cfg.addr != "off" && a.cfg.server != "" && a.cfg.server != "off" && a.cfg.final > 0
}

// deliverFinal sends the counters as they are now to the server, registering the instance
// with them. A server without the build's metadata (no instance of the build was ever read)
// answers 409: the agent sends the metadata, then the counters again.
func (a *agent) deliverFinal() {
	defer a.recoverPanic("final delivery")
	if !a.delivers() {
		return
	}
	base, err := serverURL(a.cfg.server)
	if err != nil {
		return
	}
	// No more heartbeats: the server is about to hold the instance as exited, and a heartbeat
	// after that would make it register again.
	a.cancel()
	ctx, cancel := context.WithTimeout(finalCtx, a.cfg.final)
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
