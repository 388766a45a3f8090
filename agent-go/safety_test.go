package agent

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The agent must never harm its host: whatever the server does, start returns at once,
// nothing panics, nothing is written to standard output or standard error, goroutines stay
// bounded, and the agent goes on serving its counters.

// hostile starts an agent against server for a while and checks all of the above.
func hostile(t *testing.T, server string, timeout time.Duration) {
	t.Helper()
	cfg := testConfig()
	cfg.server = server
	cfg.timeout = timeout
	reg, files := testRegistry(t, "set")
	files[1][0] = 1

	before := settledGoroutines()
	most := 0
	var problems []string
	out := captureOutput(t, func() {
		begin := time.Now()
		a := start(cfg, reg)
		if d := time.Since(begin); d > 100*time.Millisecond {
			problems = append(problems, fmt.Sprintf("start took %v", d))
		}
		<-a.ready
		for end := time.Now().Add(600 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if n := runtime.NumGoroutine(); n > most {
				most = n
			}
		}
		// The host is unaffected: the agent still serves its counters.
		if a.addr == nil {
			problems = append(problems, "agent not listening")
		} else if b, err := httpGet("http://"+a.addr.String()+"/livecov/v1/counters", a.processSecret()); err != nil {
			problems = append(problems, "counters: "+err.Error())
		} else if s, err := decodeCounters(b); err != nil || s.Files[1][0] != 1 {
			problems = append(problems, fmt.Sprintf("counters: %v %v", s, err))
		}
		a.close()
	})
	for _, p := range problems {
		t.Error(p)
	}
	if out != "" {
		t.Errorf("the agent wrote to stdout or stderr: %q", out)
	}
	// The agent, its serving goroutine, one client connection (two goroutines) and the
	// server's side of it; a leak per attempt would pass this within a few attempts.
	if most > before+8 {
		t.Errorf("goroutines grew from %d to %d", before, most)
	}
	if after := goroutines(before); after > before {
		t.Errorf("%d goroutines after close, %d before", after, before)
	}
}

func TestServerAbsent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	hostile(t, url, 500*time.Millisecond)
}

// rawServer accepts connections and hands each to serve; it counts connections.
type rawServer struct {
	ln    net.Listener
	conns int64
	open  int64
	most  int64
	wg    sync.WaitGroup
}

func newRawServer(t *testing.T, serve func(net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			atomic.AddInt64(&s.conns, 1)
			if n := atomic.AddInt64(&s.open, 1); n > atomic.LoadInt64(&s.most) {
				atomic.StoreInt64(&s.most, n)
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer atomic.AddInt64(&s.open, -1)
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

func TestServerNeverAnswers(t *testing.T) {
	// Accepts, reads whatever comes, never writes; returns when the agent hangs up.
	s := newRawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	hostile(t, s.url(), 50*time.Millisecond)
	if n := atomic.LoadInt64(&s.conns); n < 3 {
		t.Errorf("only %d attempts in 600ms", n)
	}
	if n := atomic.LoadInt64(&s.most); n > 1 {
		t.Errorf("%d connections open at once, want 1", n)
	}
}

func TestServerAnswersGarbage(t *testing.T) {
	s := newRawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(time.Second))
		c.Read(make([]byte, 512))
		c.Write([]byte(strings.Repeat("\x00garbage\xff", 100) + "\r\n\r\n"))
	})
	hostile(t, s.url(), 500*time.Millisecond)
	if n := atomic.LoadInt64(&s.conns); n < 3 {
		t.Errorf("only %d attempts in 600ms", n)
	}
}

func TestServerAnswersHugeHeader(t *testing.T) {
	s := newRawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(time.Second))
		c.Read(make([]byte, 512))
		// A header line of 2 MiB that never ends, on a connection kept open: only a bound on
		// header size lets the agent give up before its timeout.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: ")
		for i := 0; i < 2<<10; i++ {
			if _, err := c.Write([]byte(strings.Repeat("x", 1<<10))); err != nil {
				return // the agent hung up
			}
		}
		io.Copy(io.Discard, c)
	})
	hostile(t, s.url(), 500*time.Millisecond)
	if n := atomic.LoadInt64(&s.conns); n < 3 {
		t.Errorf("only %d attempts in 600ms", n)
	}
}

func TestServerAnswersEndlessBody(t *testing.T) {
	// A 200 with a body that never ends, for the registration and every heartbeat: the agent
	// reads a bounded part and carries on heartbeating.
	var heartbeats int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/heartbeat") {
			atomic.AddInt64(&heartbeats, 1)
		}
		chunk := []byte(strings.Repeat("garbage ", 1024))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	hostile(t, srv.URL, 500*time.Millisecond)
	if n := atomic.LoadInt64(&heartbeats); n < 3 {
		t.Errorf("only %d heartbeats in 600ms", n)
	}
}

func TestAgentPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv := newFakeServer(t)
	cfg := testConfig()
	cfg.addr = taken.Addr().String()
	cfg.server = srv.URL
	reg, _ := testRegistry(t, "set")

	before := settledGoroutines()
	var logged syncBuffer
	var a *agent
	out := captureOutput(t, func() {
		a = start(cfg, reg)
		<-a.ready
		time.Sleep(100 * time.Millisecond)
	})
	if out != "" {
		t.Errorf("the agent wrote to stdout or stderr: %q", out)
	}
	if a.addr != nil {
		t.Errorf("agent listens on %v", a.addr)
	}
	if r, _ := srv.counts(); r != 0 {
		t.Errorf("registered %d times without serving counters", r)
	}
	if after := goroutines(before); after > before {
		t.Errorf("%d goroutines, %d before", after, before)
	}
	a.close()

	// Under LIVECOV_DEBUG the reason is logged.
	cfg.logger = newTestLogger(&logged)
	a = startTest(t, cfg, reg)
	waitFor(t, "the listen error in the log", func() bool {
		return strings.Contains(logged.String(), "cannot listen")
	})
}
