//go:build unix

package agent

import (
	"os"
	"os/signal"
	"syscall"
)

// endSignals are the signals that end a Go program that does not handle them, and that the
// agent takes, in a build whose host cannot handle them, to deliver the last counters first.
var endSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}

// This init runs after the one in agent.go, which starts stdAgent: a package's files are
// initialized in the order of their names.
func init() {
	defer func() { recover() }()
	watchSignals(stdAgent, build.HostSignals, os.Getenv("LIVECOV_SIGNALS"))
}

// watchSignals makes the agent take SIGTERM and SIGINT, when it has something to do at the end
// and the build says that the host cannot handle them itself: no package of the build but the
// agent imports os/signal. A signal that is ignored at start (SIGINT in a background job of a
// shell script) is left alone: signal.Notify would make the process take it.
func watchSignals(a *agent, host bool, setting string) {
	switch {
	case a == nil || !a.hasEnd():
		return
	case os.Getenv("LIVECOV_TEST_DIR") != "":
		return // a test binary: its end is AfterRun's
	case host:
		logf(a.cfg.logger, "the build imports os/signal: signals are left to the host")
		return
	case setting == "off":
		logf(a.cfg.logger, "LIVECOV_SIGNALS=off: signals are left alone")
		return
	}
	var sigs []os.Signal
	for _, s := range endSignals {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	if len(sigs) == 0 {
		return
	}
	ch := make(chan os.Signal, len(endSignals)+1)
	signal.Notify(ch, sigs...)
	go a.endBySignal(ch)
}

// endBySignal waits for the first signal on ch, writes and delivers the counters as Finish
// does (a second signal cuts the delivery short), then stops taking signals, which gives them
// back to Go's default handling, and sends the first signal again to the process: it dies of
// it, with the status it would have had without livecov.
func (a *agent) endBySignal(ch chan os.Signal) {
	sig := <-ch
	close(dying)
	defer func() {
		recover()
		signal.Stop(ch)
		if s, ok := sig.(syscall.Signal); ok {
			syscall.Kill(os.Getpid(), s)
		}
	}()
	logf(a.cfg.logger, "%v: delivering the counters before the process ends", sig)
	done := make(chan struct{})
	go func() {
		defer close(done)
		finish()
	}()
	select {
	case <-done:
	case s := <-ch:
		logf(a.cfg.logger, "%v during the final delivery: ending now", s)
		cutFinal()
	}
}
