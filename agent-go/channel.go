package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The channel is the connection an agent keeps to the server when the server cannot connect
// to the agent (NAT, another network or cluster, a laptop): a long poll,
// POST /api/v1/agents/<instance>/channel, that the server answers with its next request for
// the agent, or 204 when none came within its --channel-wait. The agent runs the request
// through the handler that serves its port, exactly as if the server had connected, and
// posts the answer to POST /api/v1/agents/<instance>/channel/<id>. Both requests carry the
// agent token (LIVECOV_TOKEN) and the process secret, so only the server the agent registered
// with can ask, and the server's requests carry the Authorization a pull would: the same
// checks, the same answers. They are ordinary HTTP requests, shorter than proxies' idle
// timeouts, so the channel works through proxies and load balancers.
//
// The agent opens its channel when the server's answer to a registration or heartbeat asks
// for it (the server could not connect, or is told to ask every agent), or right after
// registering under LIVECOV_CHANNEL=on; never under LIVECOV_CHANNEL=off. Once open it stays
// open for the life of the process.

// channelPollLimit bounds one poll: the longest wait a server may hold a poll (its
// --channel-wait is at most two minutes) plus the agent's request timeout.
const channelPollLimit = 2 * time.Minute

// channelRequest is a request of the server's, as a poll answers it.
type channelRequest struct {
	ID            string `json:"id"`
	Method        string `json:"method"`
	Path          string `json:"path"` // path and query on the agent
	Authorization string `json:"authorization"`
}

// channelIfAsked opens the channel if the server's answer to a registration or heartbeat
// asks for it, or LIVECOV_CHANNEL=on.
func (a *agent) channelIfAsked(answer []byte) {
	var asked struct {
		Channel bool `json:"channel"`
	}
	json.Unmarshal(answer, &asked) // an answer without it asks for nothing
	if a.cfg.channel != "off" && (asked.Channel || a.cfg.channel == "on") {
		a.channelOnce.Do(func() {
			a.wg.Add(1)
			go a.keepChannel()
		})
	}
}

// keepChannel polls the server for requests and answers them until the agent is closed.
func (a *agent) keepChannel() {
	defer a.wg.Done()
	defer a.recoverPanic("channel")
	base, err := serverURL(a.cfg.server)
	if err != nil {
		return
	}
	pollURL := base + "/api/v1/agents/" + url.PathEscape(a.instanceID()) + "/channel"
	client := newClient(channelPollLimit+a.cfg.timeout, a.cfg.proxy)
	defer client.CloseIdleConnections()
	logf(a.cfg.logger, "keeping a connection to %s for its requests", base)
	back := backoff{initial: a.cfg.backoffMin, limit: a.cfg.backoffMax}
	for a.ctx.Err() == nil {
		req, err := a.poll(client, pollURL)
		var status statusError
		switch {
		case err == nil:
			back.reset()
			if req != nil {
				a.answerChannel(client, pollURL, req)
			}
		case errors.As(err, &status) && int(status) == http.StatusConflict:
			logf(a.cfg.logger, "channel: the server reads agents only by pulling them")
			return
		default:
			// 404 means the server does not hold the instance (it restarted): the heartbeat
			// loop registers it again, and a later poll succeeds.
			if a.ctx.Err() == nil {
				logf(a.cfg.logger, "channel: %v", err)
			}
			if !a.sleep(back.next()) {
				return
			}
		}
	}
}

// channelHeader is what identifies the agent on both channel requests.
func (a *agent) channelHeader() http.Header {
	return http.Header{"Livecov-Secret": {a.processSecret()}}
}

// poll waits for the server's next request: nil if none came.
func (a *agent) poll(client *http.Client, pollURL string) (*channelRequest, error) {
	status, answer, err := a.call(a.ctx, client, http.MethodPost, pollURL, "application/json", nil, a.channelHeader())
	if err != nil || status == http.StatusNoContent {
		return nil, err
	}
	var req channelRequest
	if err := json.Unmarshal(answer, &req); err != nil || req.ID == "" {
		return nil, errors.New("the server's request does not parse")
	}
	return &req, nil
}

// answerChannel serves req with the agent's handler and posts the answer.
func (a *agent) answerChannel(client *http.Client, pollURL string, req *channelRequest) {
	w := &recorder{header: http.Header{}}
	if r, err := channelHTTPRequest(a.ctx, req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
	} else {
		a.h.ServeHTTP(w, r)
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	header := a.channelHeader()
	header.Set("Livecov-Status", strconv.Itoa(w.status))
	for _, k := range []string{"Livecov-Build", "Livecov-Epoch"} {
		if v := w.header.Get(k); v != "" {
			header.Set(k, v)
		}
	}
	ctx, cancel := context.WithTimeout(a.ctx, channelPollLimit)
	defer cancel()
	to := pollURL + "/" + url.PathEscape(req.ID)
	if _, _, err := a.call(ctx, client, http.MethodPost, to, "application/octet-stream", w.body.Bytes(), header); err != nil {
		logf(a.cfg.logger, "channel: answering %s %s: %v", req.Method, req.Path, err)
	}
}

// channelHTTPRequest is req as the agent's handler serves it.
func channelHTTPRequest(ctx context.Context, req *channelRequest) (*http.Request, error) {
	switch req.Method {
	case http.MethodGet, http.MethodPost:
	default:
		return nil, errors.New("method " + strconv.Quote(req.Method) + " is not served over the channel")
	}
	if !strings.HasPrefix(req.Path, "/") {
		return nil, errors.New("path " + strconv.Quote(req.Path) + " is not a path")
	}
	u, err := url.ParseRequestURI(req.Path)
	if err != nil {
		return nil, err
	}
	r, err := http.NewRequestWithContext(ctx, req.Method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	r.RequestURI = u.RequestURI()
	r.RemoteAddr = "channel"
	if req.Authorization != "" {
		r.Header.Set("Authorization", req.Authorization)
	}
	return r, nil
}

// recorder is the http.ResponseWriter of a request served over the channel.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}
