package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// maxResponse bounds how much of a server answer the agent reads.
const maxResponse = 64 << 10

// registration is the body of POST /api/v1/agents/register.
type registration struct {
	Service   string `json:"service"`
	Instance  string `json:"instance"`
	Build     string `json:"build"`
	Hostname  string `json:"hostname"`
	PID       int    `json:"pid"`
	StartTime string `json:"start_time"` // RFC 3339, UTC
	Mode      string `json:"mode"`
	Port      int    `json:"port"` // the agent's listen port
	GoVersion string `json:"go_version"`
	// Secret is the process secret, which the endpoints accept as a bearer token: only the
	// server that receives it can read the agent (unless LIVECOV_TOKEN says otherwise).
	Secret string `json:"secret"`
	// Labels say where the instance runs: LIVECOV_LABELS and what the agent learns by itself
	// (labelsFromEnv).
	Labels map[string]string `json:"labels,omitempty"`
}

// heartbeat is the body of POST /api/v1/agents/<instance>/heartbeat. It carries the process
// secret, as the registration does.
type heartbeat struct {
	Secret string `json:"secret"`
}

// newClient returns the client for talking to the server. It shares nothing with the host's
// http.DefaultClient, follows no redirects, and bounds every request in time and every
// response header in size. It goes through proxy when one is given (LIVECOV_PROXY), and never
// through the proxies of the host's environment (HTTP_PROXY and the like): those are set for
// the host's own traffic, and a server in the agent's network would be reached through them.
func newClient(timeout time.Duration, proxy *url.URL) *http.Client {
	t := &http.Transport{
		DialContext:            (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxIdleConns:           1,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxResponse,
	}
	if proxy != nil {
		t.Proxy = http.ProxyURL(proxy)
	}
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
}

// report registers the agent with the server and sends heartbeats until the agent is closed.
// It runs on the agent's one goroutine for all talk with the server: requests are sequential,
// each bounded in time and in what it reads, so memory stays bounded whatever the server does.
func (a *agent) report(port int) {
	if a.cfg.server == "" || a.cfg.server == "off" {
		return
	}
	base, err := serverURL(a.cfg.server)
	if err != nil {
		logf(a.cfg.logger, "not registering: %v", err)
		return
	}
	instance := a.instanceID()
	secret := a.processSecret()
	body, _ := json.Marshal(a.registration(port))
	beat, _ := json.Marshal(heartbeat{Secret: secret})
	registerURL := base + "/api/v1/agents/register"
	heartbeatURL := base + "/api/v1/agents/" + url.PathEscape(instance) + "/heartbeat"

	back := backoff{initial: a.cfg.backoffMin, limit: a.cfg.backoffMax}
	registered := false
	for {
		var wait time.Duration
		if !registered {
			if answer, err := a.post(registerURL, body); err != nil {
				logf(a.cfg.logger, "register with %s: %v", base, err)
				wait = back.next()
			} else {
				logf(a.cfg.logger, "registered with %s as service %q, instance %s", base, a.cfg.service, instance)
				registered = true
				back.reset()
				wait = a.cfg.heartbeat
				a.channelIfAsked(answer)
			}
		} else {
			answer, err := a.post(heartbeatURL, beat)
			var status statusError
			switch {
			case err == nil:
				back.reset()
				wait = a.cfg.heartbeat
				a.channelIfAsked(answer)
			case errors.As(err, &status) && int(status) == http.StatusNotFound:
				// The server forgot this instance (it restarted, or expired it): register again,
				// now.
				logf(a.cfg.logger, "heartbeat: server does not know instance %s, registering again", instance)
				registered = false
			default:
				logf(a.cfg.logger, "heartbeat: %v", err)
				wait = back.next()
			}
		}
		if !a.sleep(wait) {
			return
		}
	}
}

// registration is what the agent registers with, serving on port (0: not serving).
func (a *agent) registration(port int) registration {
	hostname, _ := os.Hostname()
	return registration{
		Service:   a.cfg.service,
		Instance:  a.instanceID(),
		Build:     a.reg.build.ID,
		Hostname:  hostname,
		PID:       os.Getpid(),
		StartTime: a.started.UTC().Format(time.RFC3339),
		Mode:      a.reg.build.Mode,
		Port:      port,
		GoVersion: runtime.Version(),
		Secret:    a.processSecret(),
		Labels:    a.cfg.labels,
	}
}

// statusError is a non-2xx answer of the server.
type statusError int

func (e statusError) Error() string {
	return "server answered " + strconv.Itoa(int(e)) + " " + http.StatusText(int(e))
}

// post sends body as JSON to url and returns the answer, which must be a 2xx. It reads at
// most maxResponse bytes of the answer and gives up after the configured timeout.
func (a *agent) post(url string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(a.ctx, a.cfg.timeout)
	defer cancel()
	_, answer, err := a.call(ctx, a.client, http.MethodPost, url, "application/json", body, nil)
	return answer, err
}

// send sends body of type ctype to url with method and succeeds on a 2xx answer, within
// ctx. It reads at most maxResponse bytes of the answer.
func (a *agent) send(ctx context.Context, method, url, ctype string, body []byte) error {
	_, _, err := a.call(ctx, a.client, method, url, ctype, body, nil)
	return err
}

// call sends body of type ctype, with header, to url with method through client, within
// ctx, and returns the answer's status and (at most maxResponse bytes of) its body; an answer
// other than 2xx is a statusError.
func (a *agent) call(ctx context.Context, client *http.Client, method, url, ctype string, body []byte, header http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "livecov-agent/1")
	if a.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.cfg.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	// Reading (a bounded part of) the answer lets the connection be reused; closing a body
	// that was not read to its end closes the connection instead.
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, nil, statusError(resp.StatusCode)
	}
	return resp.StatusCode, answer, err
}

// sleep waits for d, or until the agent is closed; it reports whether to go on.
func (a *agent) sleep(d time.Duration) bool {
	if d <= 0 {
		return a.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a.ctx.Done():
		return false
	}
}

// serverURL checks a server URL and returns it without a trailing slash.
func serverURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server URL %q: want http://host[:port] or https://host[:port]", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// newRandomID returns 16 random bytes in hex: an instance id or a process secret.
func newRandomID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// Before Go 1.24 crypto/rand can fail. The clock, the pid and math/rand (seeded at
		// random since Go 1.20) then give an id that is unique in practice.
		s := strconv.FormatInt(time.Now().UnixNano(), 16) + strconv.Itoa(os.Getpid())
		copy(b[:], s)
		for i := range b {
			b[i] ^= byte(mathrand.Intn(256))
		}
	}
	return hex.EncodeToString(b[:])
}

// backoff yields exponentially growing delays with jitter: the ceiling doubles from initial
// up to limit, and each delay is drawn between half the ceiling and the ceiling, so that many
// instances that lost the server at once do not come back at once.
type backoff struct {
	initial, limit, ceiling time.Duration
}

func (b *backoff) next() time.Duration {
	switch {
	case b.ceiling < b.initial:
		b.ceiling = b.initial
	case b.ceiling < b.limit/2:
		b.ceiling *= 2
	default:
		b.ceiling = b.limit
	}
	half := b.ceiling / 2
	return half + time.Duration(mathrand.Int63n(int64(b.ceiling-half)+1))
}

func (b *backoff) reset() { b.ceiling = 0 }
