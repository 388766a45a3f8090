// Command load puts the benchmark service under load: -c connections, each one goroutine
// that sends its requests one after the other over a kept-alive connection, for -warmup and
// then -d, a mix of POST /render (the Markdown document doc.md) and GET /json (-mix
// RENDER:JSON). Only the requests that complete within the -d window count towards the
// throughput; any answer but 200 is an error, during the warm-up too. It prints one JSON
// object on standard output:
//
//	{"requests": N, "seconds": S, "rps": R, "render": N, "json": N, "errors": N, "first_error": "..."}
//
// With -check it sends one request of each kind instead, checks the answers' status and
// contents and exits 1, saying why on standard error, unless both are right.
package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed doc.md
var doc []byte

// result is what one run prints.
type result struct {
	Requests   int64   `json:"requests"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	Render     int64   `json:"render"`
	JSON       int64   `json:"json"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
}

type load struct {
	client *http.Client
	base   string

	render, json atomic.Int64 // completed in the timed window, by kind
	counting     atomic.Bool
	stop         atomic.Bool
	errors       atomic.Int64
	firstError   atomic.Value // string
}

// send sends one request and reads the whole answer.
func (l *load) send(render bool) ([]byte, error) {
	var req *http.Request
	var err error
	if render {
		req, err = http.NewRequest(http.MethodPost, l.base+"/render", bytes.NewReader(doc))
		if err == nil {
			req.Header.Set("Content-Type", "text/markdown")
		}
	} else {
		req, err = http.NewRequest(http.MethodGet, l.base+"/json", nil)
	}
	if err != nil {
		return nil, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body)
	}
	return body, nil
}

// worker sends requests until told to stop: of every renders+jsons requests, renders are
// POST /render.
func (l *load) worker(renders, jsons int, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; !l.stop.Load(); i++ {
		render := i%(renders+jsons) < renders
		if _, err := l.send(render); err != nil {
			if l.errors.Add(1) == 1 {
				l.firstError.Store(err.Error())
			}
			continue
		}
		if l.counting.Load() {
			if render {
				l.render.Add(1)
			} else {
				l.json.Add(1)
			}
		}
	}
}

// check sends one request of each kind and checks the answers.
func (l *load) check() error {
	html, err := l.send(true)
	if err != nil {
		return err
	}
	for _, want := range []string{"<h1", "<table>", "<del>", `type="checkbox"`, "<code"} {
		if !bytes.Contains(html, []byte(want)) {
			return fmt.Errorf("POST /render: no %s in the HTML:\n%.500s", want, html)
		}
	}
	body, err := l.send(false)
	if err != nil {
		return err
	}
	var order struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &order); err != nil {
		return fmt.Errorf("GET /json: %v", err)
	}
	if len(order.Items) == 0 {
		return errors.New("GET /json: an order without items")
	}
	return nil
}

// parseMix reads "RENDER:JSON".
func parseMix(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, ":")
	r, err1 := strconv.Atoi(a)
	j, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || r < 0 || j < 0 || r+j == 0 {
		return 0, 0, fmt.Errorf("-mix %q: want RENDER:JSON, such as 4:1", s)
	}
	return r, j, nil
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "the service's base URL")
	conns := flag.Int("c", 8, "connections")
	dur := flag.Duration("d", 5*time.Second, "timed window")
	warmup := flag.Duration("warmup", time.Second, "load before the timed window, not counted")
	mix := flag.String("mix", "4:1", "POST /render requests to GET /json requests")
	check := flag.Bool("check", false, "send one request of each kind, check the answers and exit")
	flag.Parse()
	renders, jsons, err := parseMix(*mix)
	if err != nil || *conns < 1 || *dur <= 0 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "load: bad flags:", err)
		os.Exit(2)
	}

	l := &load{
		client: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: *conns,
				MaxConnsPerHost:     *conns,
				DisableCompression:  true,
			},
		},
		base: strings.TrimSuffix(*base, "/"),
	}
	if *check {
		if err := l.check(); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		return
	}

	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go l.worker(renders, jsons, &wg)
	}
	time.Sleep(*warmup)
	l.counting.Store(true)
	start := time.Now()
	time.Sleep(*dur)
	l.counting.Store(false)
	elapsed := time.Since(start).Seconds()
	l.stop.Store(true)
	wg.Wait()

	r := result{
		Render:  l.render.Load(),
		JSON:    l.json.Load(),
		Seconds: elapsed,
		Errors:  l.errors.Load(),
	}
	r.Requests = r.Render + r.JSON
	r.RPS = float64(r.Requests) / elapsed
	if e, ok := l.firstError.Load().(string); ok {
		r.FirstError = e
	}
	json.NewEncoder(os.Stdout).Encode(r)
}
