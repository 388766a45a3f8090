package agent

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// config is everything an agent needs besides its registry. configFromEnv reads it from the
// environment; tests build it directly.
type config struct {
	addr       string            // listen address; "off" for no listener (and no registration)
	server     string            // server base URL; "" or "off" for no registration
	service    string            // service name to register under
	token      string            // bearer token accepted by the endpoints and sent to the server
	heartbeat  time.Duration     // interval between heartbeats
	dir        string            // directory for the on-disk copy of the counters; "" for none
	flush      time.Duration     // interval between writes of the counters to dir
	timeout    time.Duration     // bound on each request to the server
	backoffMin time.Duration     // first delay after a failed request
	backoffMax time.Duration     // largest delay after failed requests
	logger     *log.Logger       // debug log; nil for none
	labels     map[string]string // sent with the registration
	final      time.Duration     // bound on the delivery of the last counters; 0 for none
	channel    string            // when to connect to the server for its requests: "auto", "on", "off"
	proxy      *url.URL          // HTTP proxy to the server; nil for none
}

const (
	defaultHeartbeat = 10 * time.Second
	minHeartbeat     = 10 * time.Millisecond
	defaultFlush     = 10 * time.Second
	minFlush         = 10 * time.Millisecond
	defaultFinal     = 2 * time.Second
)

// configFromEnv returns the configuration given by the environment and the build.
func configFromEnv(b buildInfo) config {
	cfg := config{
		addr:       ":0",
		server:     b.Server,
		service:    b.Service,
		token:      os.Getenv("LIVECOV_TOKEN"),
		heartbeat:  defaultHeartbeat,
		flush:      defaultFlush,
		timeout:    5 * time.Second,
		backoffMin: time.Second,
		backoffMax: time.Minute,
		final:      defaultFinal,
		channel:    "auto",
	}
	if os.Getenv("LIVECOV_DEBUG") != "" {
		cfg.logger = log.New(os.Stderr, "livecov: ", log.LstdFlags|log.Lmsgprefix)
	}
	if v := os.Getenv("LIVECOV_DIR"); v != "" && v != "off" {
		// Made absolute now: the host may change its working directory later.
		if abs, err := filepath.Abs(v); err == nil {
			v = abs
		}
		cfg.dir = v
	}
	if os.Getenv("LIVECOV_TEST_DIR") != "" {
		// A test binary of `livecov test`: its counters are written by AfterRun, it never
		// keeps them in LIVECOV_DIR, and it neither listens nor registers unless told to.
		cfg.addr = "off"
		cfg.dir = ""
	}
	if v := os.Getenv("LIVECOV_AGENT_ADDR"); v != "" {
		cfg.addr = v
	}
	if v := os.Getenv("LIVECOV_SERVER"); v != "" {
		cfg.server = v
	}
	if v := os.Getenv("LIVECOV_SERVICE"); v != "" {
		cfg.service = v
	}
	if cfg.service == "" && len(os.Args) > 0 {
		cfg.service = strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	}
	cfg.heartbeat = envInterval(cfg.logger, "LIVECOV_HEARTBEAT", cfg.heartbeat, minHeartbeat)
	cfg.flush = envInterval(cfg.logger, "LIVECOV_FLUSH", cfg.flush, minFlush)
	cfg.labels = labelsFromEnv(cfg.logger)
	if v := os.Getenv("LIVECOV_PROXY"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			logf(cfg.logger, "LIVECOV_PROXY=%q: want http://host:port; going to the server directly", v)
		} else {
			cfg.proxy = u
		}
	}
	switch v := os.Getenv("LIVECOV_CHANNEL"); v {
	case "", "auto":
	case "on", "off":
		cfg.channel = v
	default:
		logf(cfg.logger, "LIVECOV_CHANNEL=%q: want auto, on or off; using auto", v)
	}
	if v := os.Getenv("LIVECOV_FINAL_TIMEOUT"); v == "off" || v == "0" {
		cfg.final = 0
	} else {
		cfg.final = envInterval(cfg.logger, "LIVECOV_FINAL_TIMEOUT", cfg.final, minHeartbeat)
	}
	return cfg
}

// envInterval returns the duration that the environment variable name sets, def if it sets
// none or one that does not parse, and least if it sets a shorter one.
func envInterval(l *log.Logger, name string, def, least time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		logf(l, "%s: %v; using %v", name, err, def)
		return def
	case d < least:
		logf(l, "%s=%v is too short; using %v", name, d, least)
		return least
	}
	return d
}

// stdAgent is the agent of this process, started by init.
var stdAgent *agent

func init() {
	defer func() { recover() }()
	stdAgent = start(configFromEnv(build), std)
}

// An agent serves one registry over HTTP and keeps it registered with the server.
type agent struct {
	cfg     config
	reg     *registry
	started time.Time
	ctx     context.Context // cancelled by close
	cancel  context.CancelFunc
	client  *http.Client
	wg      sync.WaitGroup
	disk    *diskWriter // keeps the counters in cfg.dir; nil if cfg.dir is ""
	h       *handler    // serves the endpoints, on the listener and over the channel

	channelOnce sync.Once // starts keepChannel

	instanceOnce sync.Once
	instance     string // see instanceID

	secretOnce sync.Once
	secret     string // see processSecret

	// Set by run before ready is closed; read only after.
	ready     chan struct{}
	readyOnce sync.Once
	addr      net.Addr     // the listener's address; nil if the agent does not listen
	srv       *http.Server // nil if the agent does not listen
}

// start starts an agent and returns at once: listening, serving, registering and writing
// the counters to disk happen in goroutines.
func start(cfg config, reg *registry) *agent {
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent{
		cfg:     cfg,
		reg:     reg,
		started: time.Now(),
		ctx:     ctx,
		cancel:  cancel,
		client:  newClient(cfg.timeout, cfg.proxy),
		ready:   make(chan struct{}),
	}
	a.h = &handler{reg: reg, secret: a.processSecret, token: cfg.token, log: cfg.logger}
	if cfg.dir != "" {
		a.disk = newDiskWriter(a)
		a.wg.Add(1)
		go a.writeLoop()
	}
	a.wg.Add(1)
	go a.run()
	return a
}

// instanceID returns the id of this agent's instance, made on first use: the id it registers
// under and the name of its counters file. It is not made in start because reading random
// bytes can block early in a machine's boot.
func (a *agent) instanceID() string {
	a.instanceOnce.Do(func() { a.instance = newRandomID() })
	return a.instance
}

// processSecret returns the secret of this agent's instance, made on first use. The agent
// tells it only to the server it registers with; the endpoints accept it as a bearer token.
func (a *agent) processSecret() string {
	a.secretOnce.Do(func() { a.secret = newRandomID() })
	return a.secret
}

func (a *agent) run() {
	defer a.wg.Done()
	defer a.markReady()
	defer a.recoverPanic("agent")
	if a.cfg.addr == "off" {
		logf(a.cfg.logger, "LIVECOV_AGENT_ADDR=off: agent disabled")
		return
	}
	ln, err := net.Listen("tcp", a.cfg.addr)
	if err != nil {
		logf(a.cfg.logger, "cannot listen, counters will not be served: %v", err)
		return
	}
	a.addr = ln.Addr()
	a.srv = &http.Server{
		Handler:           a.h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		// net/http logs to the standard logger by default, which is the host's stderr.
		ErrorLog: a.errorLog(),
	}
	a.markReady()
	logf(a.cfg.logger, "serving build %s on %s", a.reg.build.ID, a.addr)
	a.wg.Add(1)
	go a.serve(ln)
	port := 0
	if t, ok := a.addr.(*net.TCPAddr); ok {
		port = t.Port
	}
	a.report(port)
}

func (a *agent) serve(ln net.Listener) {
	defer a.wg.Done()
	defer a.recoverPanic("serve")
	err := a.srv.Serve(ln)
	if err != http.ErrServerClosed {
		logf(a.cfg.logger, "agent stopped serving: %v", err)
	}
}

func (a *agent) markReady() { a.readyOnce.Do(func() { close(a.ready) }) }

func (a *agent) recoverPanic(what string) {
	if v := recover(); v != nil {
		logf(a.cfg.logger, "panic in %s (recovered): %v", what, v)
	}
}

// close stops the agent and waits for its goroutines. The process's own agent is never
// closed; tests close theirs.
func (a *agent) close() {
	a.cancel()
	<-a.ready
	if a.srv != nil {
		a.srv.Close()
	}
	a.wg.Wait()
	a.client.CloseIdleConnections()
}

func (a *agent) errorLog() *log.Logger {
	if a.cfg.logger == nil {
		return log.New(io.Discard, "", 0)
	}
	return a.cfg.logger
}

func logf(l *log.Logger, format string, args ...interface{}) {
	if l != nil {
		l.Printf(format, args...)
	}
}
