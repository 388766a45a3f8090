package agent

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testSecret is the process secret of the handlers that serveTest starts.
const testSecret = "5ec2e75ec2e75ec2e75ec2e75ec2e75e"

// serveTest serves reg with the agent's handler on a test server, with the process secret
// testSecret and token as LIVECOV_TOKEN.
func serveTest(t *testing.T, reg *registry, token string) string {
	t.Helper()
	srv := httptest.NewServer(&handler{reg: reg, secret: func() string { return testSecret }, token: token})
	t.Cleanup(srv.Close)
	return srv.URL
}

// fetchCounters sends a request answered in the counters wire format and returns the
// decoded counters, the answer's Livecov-Epoch and its body.
func fetchCounters(t *testing.T, method, url, token string) (counterSet, uint32, []byte) {
	t.Helper()
	resp, body := do(t, method, url, token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, url, resp.Status, body)
	}
	for k, v := range map[string]string{
		"Content-Type":  countersContentType,
		"Livecov-Build": testBuildID,
		"Cache-Control": "no-store",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s %s: %s %q, want %q", method, url, k, got, v)
		}
	}
	epoch, err := strconv.ParseUint(resp.Header.Get("Livecov-Epoch"), 10, 32)
	if err != nil || epoch == 0 {
		t.Errorf("%s %s: Livecov-Epoch %q", method, url, resp.Header.Get("Livecov-Epoch"))
	}
	s, err := decodeCounters(body)
	if err != nil {
		t.Fatal(err)
	}
	if s.Build != testBuildID {
		t.Errorf("build %q in the counters", s.Build)
	}
	return s, uint32(epoch), body
}

func getCounters(t *testing.T, method, url, token string) counterSet {
	t.Helper()
	s, _, _ := fetchCounters(t, method, url, token)
	return s
}

func TestCountersEndpoint(t *testing.T) {
	for _, mode := range []string{"set", "count", "atomic"} {
		reg, files := testRegistry(t, mode)
		files[0][0], files[0][4], files[2][1] = 1, 7, 1<<32-1
		url := serveTest(t, reg, "")
		s, epoch, _ := fetchCounters(t, "GET", url+"/livecov/v1/counters", testSecret)
		want := [][]uint32{{1, 0, 0, 0, 7, 0}, {0}, {0, 1<<32 - 1}}
		if mode == "set" {
			// Every set counter reads as the current epoch, 1 before any boundary.
			want = [][]uint32{{1, 0, 0, 0, 1, 0}, {0}, {0, 1}}
		}
		if s.Mode != mode || !equalCounts(s.Files, want) || epoch != 1 {
			t.Errorf("%s: got mode %s, counters %v, epoch %d, want %v in epoch 1", mode, s.Mode, s.Files, epoch, want)
		}
		if live := [][]uint32{{1, 0, 0, 0, 7, 0}, {0}, {0, 1<<32 - 1}}; !equalCounts(files, live) {
			t.Errorf("%s: reading changed the counters: %v", mode, files)
		}
	}
}

func TestCountersOfUnregisteredFilesAreZero(t *testing.T) {
	reg := newRegistry(testBuild("set"))
	reg.add(1, []uint32{1})
	s := getCounters(t, "GET", serveTest(t, reg, "")+"/livecov/v1/counters", testSecret)
	want := [][]uint32{{0, 0, 0, 0, 0, 0}, {1}, {0, 0}}
	if !equalCounts(s.Files, want) {
		t.Errorf("counters %v, want %v", s.Files, want)
	}
}

// hit does what instrumented code in set mode does when a block runs.
func hit(c *uint32) {
	if atomic.LoadUint32(c) == 0 {
		atomic.StoreUint32(c, 1)
	}
}

func TestBoundarySetMode(t *testing.T) {
	reg, files := testRegistry(t, "set")
	url := serveTest(t, reg, "")
	counters := url + "/livecov/v1/counters"
	boundary := func(token string) (counterSet, uint32, []byte) {
		t.Helper()
		return fetchCounters(t, "POST", url+"/livecov/v1/boundary?token="+token, testSecret)
	}
	check := func(what string, s counterSet, epoch uint32, want [][]uint32, wantEpoch uint32) {
		t.Helper()
		if !equalCounts(s.Files, want) || epoch != wantEpoch || s.Mode != "set" {
			t.Errorf("%s: %v in epoch %d (%s), want %v in epoch %d", what, s.Files, epoch, s.Mode, want, wantEpoch)
		}
	}

	hit(&files[0][1])
	hit(&files[2][0])
	epoch1 := [][]uint32{{0, 1, 0, 0, 0, 0}, {0}, {1, 0}}
	s, epoch, _ := fetchCounters(t, "GET", counters, testSecret)
	check("before any boundary", s, epoch, epoch1, 1)

	s, epoch, first := boundary("b-1")
	check("the first boundary", s, epoch, epoch1, 2)
	if zero := [][]uint32{{0, 0, 0, 0, 0, 0}, {0}, {0, 0}}; !equalCounts(files, zero) {
		t.Errorf("the live counters after a boundary: %v, want zeros", files)
	}
	s, epoch, _ = fetchCounters(t, "GET", counters, testSecret)
	check("after the boundary", s, epoch, epoch1, 2)

	// Hits now read as epoch 2; a block not hit again keeps its 1.
	hit(&files[0][1])
	hit(&files[1][0])
	epoch2 := [][]uint32{{0, 2, 0, 0, 0, 0}, {2}, {1, 0}}
	s, epoch, _ = fetchCounters(t, "GET", counters, testSecret)
	check("hits after the boundary", s, epoch, epoch2, 2)

	// The same token again: the same answer, byte for byte, and nothing applied.
	s, epoch, again := boundary("b-1")
	check("the repeated boundary", s, epoch, epoch1, 2)
	if !bytes.Equal(again, first) {
		t.Errorf("the repeated boundary answered\n% x\nthe first\n% x", again, first)
	}
	if atomic.LoadUint32(&files[0][1]) != 1 || atomic.LoadUint32(&files[1][0]) != 1 {
		t.Error("the repeated boundary swapped the counters")
	}
	s, epoch, _ = fetchCounters(t, "GET", counters, testSecret)
	check("after the repeated boundary", s, epoch, epoch2, 2)

	// A new token applies a new boundary.
	s, epoch, _ = boundary("b-2")
	check("the second boundary", s, epoch, epoch2, 3)
	s, epoch, _ = fetchCounters(t, "GET", counters, testSecret)
	check("after the second boundary", s, epoch, epoch2, 3)
	hit(&files[2][1])
	epoch3 := [][]uint32{{0, 2, 0, 0, 0, 0}, {2}, {1, 3}}
	s, epoch, _ = fetchCounters(t, "GET", counters, testSecret)
	check("a hit in epoch 3", s, epoch, epoch3, 3)

	// Only the last token is remembered: an older one is a new boundary.
	s, epoch, _ = boundary("b-1")
	check("an old token again", s, epoch, epoch3, 4)
}

func TestBoundaryCountMode(t *testing.T) {
	for _, mode := range []string{"count", "atomic"} {
		reg, files := testRegistry(t, mode)
		url := serveTest(t, reg, "")
		counters := url + "/livecov/v1/counters"
		check := func(what string, s counterSet, epoch uint32, want [][]uint32, wantEpoch uint32) {
			t.Helper()
			if !equalCounts(s.Files, want) || epoch != wantEpoch || s.Mode != mode {
				t.Errorf("%s: %s: %v in epoch %d (%s), want %v in epoch %d", mode, what, s.Files, epoch, s.Mode, want, wantEpoch)
			}
		}
		atomic.StoreUint32(&files[0][2], 3)
		atomic.StoreUint32(&files[1][0], 1)
		atB1 := [][]uint32{{0, 0, 3, 0, 0, 0}, {1}, {0, 0}}

		s, epoch, first := fetchCounters(t, "POST", url+"/livecov/v1/boundary?token=c1", testSecret)
		check("the first boundary", s, epoch, atB1, 2)
		if !equalCounts(files, atB1) {
			t.Errorf("%s: the boundary changed the counters: %v", mode, files)
		}
		s, epoch, _ = fetchCounters(t, "GET", counters, testSecret)
		check("after the boundary", s, epoch, atB1, 2)

		// Counts go on from where they were: they never drop.
		atomic.AddUint32(&files[0][2], 2)
		atomic.StoreUint32(&files[2][0], 9)
		now := [][]uint32{{0, 0, 5, 0, 0, 0}, {1}, {9, 0}}
		s, epoch, _ = fetchCounters(t, "GET", counters, testSecret)
		check("cumulative counts", s, epoch, now, 2)

		s, epoch, again := fetchCounters(t, "POST", url+"/livecov/v1/boundary?token=c1", testSecret)
		check("the repeated boundary", s, epoch, atB1, 2)
		if !bytes.Equal(again, first) {
			t.Errorf("%s: the repeated boundary answered\n% x\nthe first\n% x", mode, again, first)
		}

		s, epoch, _ = fetchCounters(t, "POST", url+"/livecov/v1/boundary?token=c2", testSecret)
		check("the second boundary", s, epoch, now, 3)
		s, epoch, _ = fetchCounters(t, "GET", counters, testSecret)
		check("after the second boundary", s, epoch, now, 3)
	}
}

// TestBoundaryRacesWithHits runs boundaries while goroutines hit blocks, and checks that no
// hit is lost.
func TestBoundaryRacesWithHits(t *testing.T) {
	const workers = 3
	t.Run("set", func(t *testing.T) {
		// Every block is hit once, so a hit that a boundary loses shows: nothing hits the
		// block again.
		const perWorker = 4000
		reg := newRegistry(bigBuild("set", workers*perWorker))
		counters := make([]uint32, workers*perWorker)
		reg.add(0, counters)
		url := serveTest(t, reg, "")
		// begun is an epoch that has begun: a hit made after reading it happens in that epoch
		// or a later one, so the block's stamp must end at least that high.
		begun := uint32(1)
		least := make([]uint32, len(counters)) // each block's element written by one worker
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < len(counters); i += workers {
					least[i] = atomic.LoadUint32(&begun)
					hit(&counters[i])
					if i%8 == 0 {
						time.Sleep(time.Microsecond)
					}
				}
			}(w)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		n := 0
		for running := true; running; n++ {
			select {
			case <-done:
				running = false // one more boundary, after the last hit
			default:
			}
			s, epoch, _ := fetchCounters(t, "POST", url+"/livecov/v1/boundary?token=r"+strconv.Itoa(n), testSecret)
			if epoch != uint32(n+2) {
				t.Fatalf("boundary %d began epoch %d, want %d", n, epoch, n+2)
			}
			for _, v := range s.Files[0] {
				if v >= epoch {
					t.Fatalf("boundary %d answered stamp %d, beyond the epoch that ended", n, v)
				}
			}
			atomic.StoreUint32(&begun, epoch)
		}
		t.Logf("%d boundaries", n)
		s, epoch, _ := fetchCounters(t, "GET", url+"/livecov/v1/counters", testSecret)
		bad := 0
		for i, e := range least {
			if v := s.Files[0][i]; v < e || v > epoch {
				if bad++; bad <= 10 {
					t.Errorf("block %d was hit in epoch %d or later, stamped %d (epoch now %d)", i, e, v, epoch)
				}
			}
		}
		if bad > 10 {
			t.Errorf("and %d more", bad-10)
		}
	})
	t.Run("atomic", func(t *testing.T) {
		reg, files := testRegistry(t, "atomic")
		url := serveTest(t, reg, "")
		totals := make([][][]uint32, workers)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(w)))
				mine := sizedLike(files)
				defer func() { totals[w] = mine }()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					f := rng.Intn(len(files))
					b := rng.Intn(len(files[f]))
					atomic.AddUint32(&files[f][b], 1)
					mine[f][b]++
					if i%64 == 0 {
						time.Sleep(time.Microsecond)
					}
				}
			}(w)
		}
		last := sizedLike(files)
		for i := 0; i < 100; i++ {
			s, _, _ := fetchCounters(t, "POST", url+"/livecov/v1/boundary?token=r"+strconv.Itoa(i), testSecret)
			for f := range s.Files {
				for b, v := range s.Files[f] {
					if v < last[f][b] {
						t.Fatalf("boundary %d: block %d of file %d went back from %d to %d", i, b, f, last[f][b], v)
					}
					last[f][b] = v
				}
			}
		}
		close(stop)
		wg.Wait()
		want := sizedLike(files)
		for w := range totals {
			for f := range totals[w] {
				for b, n := range totals[w][f] {
					want[f][b] += n
				}
			}
		}
		if s := getCounters(t, "GET", url+"/livecov/v1/counters", testSecret); !equalCounts(s.Files, want) {
			t.Errorf("counters %v, want the %v hits made", s.Files, want)
		}
	})
}

// sizedLike returns zeroed arrays of the sizes of files.
func sizedLike(files [][]uint32) [][]uint32 {
	out := make([][]uint32, len(files))
	for i := range files {
		out[i] = make([]uint32, len(files[i]))
	}
	return out
}

func TestBoundaryBadToken(t *testing.T) {
	reg, files := testRegistry(t, "set")
	files[0][0] = 1
	url := serveTest(t, reg, "")
	for _, query := range []string{
		"", "?", "?token", "?token=", "?other=x", "?token=a&token=b", "?token=a%20b", "?token=a/b",
		"?token=%C3%A9", "?token=a%zz", "?token=" + strings.Repeat("x", maxBoundaryToken+1),
	} {
		resp, body := do(t, "POST", url+"/livecov/v1/boundary"+query, testSecret)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("boundary%s: %s, want 400", query, resp.Status)
			continue
		}
		checkErrorJSON(t, resp, body)
	}
	if _, epoch, _ := fetchCounters(t, "GET", url+"/livecov/v1/counters", testSecret); epoch != 1 {
		t.Errorf("a refused boundary was applied: epoch %d", epoch)
	}
	if files[0][0] != 1 {
		t.Error("a refused boundary swapped the counters")
	}
	for i, token := range []string{"Az09-_.", strings.Repeat("x", maxBoundaryToken), "7"} {
		if _, epoch, _ := fetchCounters(t, "POST", url+"/livecov/v1/boundary?token="+token, testSecret); epoch != uint32(i+2) {
			t.Errorf("boundary %q began epoch %d, want %d", token, epoch, i+2)
		}
	}
}

func TestBoundaryRefusesBrowsers(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	url := serveTest(t, reg, "")
	boundary := url + "/livecov/v1/boundary?token=x"
	post := func(token string, header http.Header) (*http.Response, []byte) {
		t.Helper()
		return doHeader(t, "POST", boundary, token, header)
	}
	for _, h := range []http.Header{
		{"Origin": {"http://evil.example"}},
		{"Origin": {"null"}},
		{"Origin": {""}},
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}},
		{"Sec-Fetch-Site": {"same-origin", "cross-site"}},
		{"Origin": {"http://" + strings.TrimPrefix(url, "http://")}, "Sec-Fetch-Site": {"same-origin"}},
	} {
		resp, body := post(testSecret, h)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("boundary with %v: %s, want 403", h, resp.Status)
			continue
		}
		if msg := checkErrorJSON(t, resp, body); msg != "cross-site browser requests are refused" {
			t.Errorf("boundary with %v: error %q", h, msg)
		}
	}
	// Without the secret, 401 comes first.
	if resp, _ := post("", http.Header{"Origin": {"http://evil.example"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cross-site without the secret: %s, want 401", resp.Status)
	}
	if _, epoch, _ := fetchCounters(t, "GET", url+"/livecov/v1/counters", testSecret); epoch != 1 {
		t.Errorf("a refused boundary was applied: epoch %d", epoch)
	}
	// What browsers send for a request typed in the address bar or from the page itself passes,
	// as do reads carrying Origin.
	for i, h := range []http.Header{{"Sec-Fetch-Site": {"none"}}, {"Sec-Fetch-Site": {"same-origin"}}} {
		resp, body := doHeader(t, "POST", url+"/livecov/v1/boundary?token=ok"+strconv.Itoa(i), testSecret, h)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("boundary with %v: %s %s", h, resp.Status, body)
		}
	}
	resp, _ := doHeader(t, "GET", url+"/livecov/v1/counters", testSecret, http.Header{"Origin": {"http://evil.example"}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("counters with Origin: %s", resp.Status)
	}
}

// wantProfile is the profile of the fixture build in set mode with blocks 0 and 4 of file 0
// and block 1 of file 2 hit. Package example.com/m (a.go, pkg0.go) comes before package
// example.com/m/pkg; within a file, blocks go by start line, end line, start column, end
// column.
const wantProfile = `mode: set
example.com/m/a.go:3.14,5.2 2 1
example.com/m/a.go:7.1,7.5 0 0
example.com/m/pkg0.go:3.14,5.2 1 0
example.com/m/pkg/b.go:5.20,6.4 1 0
example.com/m/pkg/b.go:5.20,8.2 1 0
example.com/m/pkg/b.go:10.1,12.9 1 0
example.com/m/pkg/b.go:10.2,12.3 2 1
example.com/m/pkg/b.go:20.5,22.1 1 0
example.com/m/pkg/b.go:20.1,25.1 3 1
`

func getProfile(t *testing.T, url string) string {
	t.Helper()
	resp, body := do(t, "GET", url+"/livecov/v1/profile", testSecret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s", resp.Status, body)
	}
	if id := resp.Header.Get("Livecov-Build"); id != testBuildID {
		t.Errorf("Livecov-Build %q", id)
	}
	return string(body)
}

func TestProfileEndpoint(t *testing.T) {
	reg, files := testRegistry(t, "set")
	files[0][0], files[0][4], files[2][1] = 1, 1, 1
	if got := getProfile(t, serveTest(t, reg, "")); got != wantProfile {
		t.Errorf("profile:\n%s\nwant:\n%s", got, wantProfile)
	}
}

// A Go profile in set mode holds 0 or 1, whatever the stamps.
func TestProfileAfterBoundary(t *testing.T) {
	reg, files := testRegistry(t, "set")
	url := serveTest(t, reg, "")
	hit(&files[0][0])
	hit(&files[0][4])
	getCounters(t, "POST", url+"/livecov/v1/boundary?token=one", testSecret)
	hit(&files[0][4])
	hit(&files[2][1])
	getCounters(t, "POST", url+"/livecov/v1/boundary?token=two", testSecret)
	s := getCounters(t, "GET", url+"/livecov/v1/counters", testSecret)
	if want := [][]uint32{{1, 0, 0, 0, 2, 0}, {0}, {0, 2}}; !equalCounts(s.Files, want) {
		t.Fatalf("stamps %v, want %v", s.Files, want)
	}
	if got := getProfile(t, url); got != wantProfile {
		t.Errorf("profile:\n%s\nwant:\n%s", got, wantProfile)
	}
}

func TestMetaEndpoint(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	url := serveTest(t, reg, "")
	for i := 0; i < 2; i++ { // the second answer comes from the cached compressed copy
		// A transport without compression handling, to see the bytes as sent.
		client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		req, _ := http.NewRequest("GET", url+"/livecov/v1/meta", nil)
		req.Header.Set("Authorization", "Bearer "+testSecret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s", resp.Status, raw)
		}
		for k, v := range map[string]string{
			"Content-Type":     "application/json",
			"Content-Encoding": "gzip",
			"Livecov-Build":    testBuildID,
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if string(text) != reg.build.Meta {
			t.Errorf("meta decodes to %q, want the build's metadata", text)
		}
		if !json.Valid(text) {
			t.Error("meta is not JSON")
		}
	}
}

func TestEndpointErrors(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	url := serveTest(t, reg, "")
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/", 404, ""},
		{"GET", "/livecov/v1/nothing", 404, ""},
		{"GET", "/livecov/v1/counters/", 404, ""},
		{"POST", "/livecov/v1/counters", 405, "GET, HEAD"},
		{"DELETE", "/livecov/v1/meta", 405, "GET, HEAD"},
		{"PUT", "/livecov/v1/profile", 405, "GET, HEAD"},
		{"GET", "/livecov/v1/boundary?token=x", 405, "POST"},
		{"HEAD", "/livecov/v1/boundary?token=x", 405, "POST"},
		{"POST", "/livecov/v1/reset", 404, ""},
		{"HEAD", "/livecov/v1/counters", 200, ""},
	} {
		resp, body := do(t, tc.method, url+tc.path, testSecret)
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.code)
			continue
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		if tc.code != 200 && tc.method != "HEAD" {
			checkErrorJSON(t, resp, body)
		}
	}
}

func TestEndpointsBadMetadata(t *testing.T) {
	b := testBuild("set")
	b.Meta = `{"build":"other"}`
	url := serveTest(t, newRegistry(b), "")
	for _, ep := range []struct{ method, path string }{
		{"GET", "/livecov/v1/counters"}, {"POST", "/livecov/v1/boundary?token=x"}, {"GET", "/livecov/v1/profile"},
	} {
		resp, body := do(t, ep.method, url+ep.path, testSecret)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s %s: %s, want 500", ep.method, ep.path, resp.Status)
		}
		if msg := checkErrorJSON(t, resp, body); !strings.Contains(msg, "bad build metadata") {
			t.Errorf("%s %s: error %q", ep.method, ep.path, msg)
		}
	}
}

// endpoints are the agent's endpoints, one request each, and two paths that are not.
var endpoints = []struct{ method, path string }{
	{"GET", "/livecov/v1/meta"}, {"GET", "/livecov/v1/counters"}, {"POST", "/livecov/v1/boundary?token=t"},
	{"GET", "/livecov/v1/profile"}, {"HEAD", "/livecov/v1/counters"}, {"GET", "/elsewhere"},
	{"POST", "/livecov/v1/reset"},
}

// checkAuth checks that every endpoint of the agent at url refuses each of refused as
// Authorization header, and accepts "Bearer X" for each X in accepted.
func checkAuth(t *testing.T, url string, refused, accepted []string) {
	t.Helper()
	for _, ep := range endpoints {
		for _, auth := range refused {
			req, _ := http.NewRequest(ep.method, url+ep.path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %s, want 401", ep.method, ep.path, auth, resp.Status)
				continue
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="livecov"` {
				t.Errorf("%s %s: WWW-Authenticate %q", ep.method, ep.path, got)
			}
			if ep.method != "HEAD" {
				checkErrorJSON(t, resp, body)
			}
		}
		for _, token := range accepted {
			resp, body := do(t, ep.method, url+ep.path, token)
			want := http.StatusOK
			if ep.path == "/elsewhere" || ep.path == "/livecov/v1/reset" {
				want = http.StatusNotFound
			}
			if resp.StatusCode != want {
				t.Errorf("%s %s with %q: %s %s, want %d", ep.method, ep.path, token, resp.Status, body, want)
			}
		}
	}
}

// strangers are Authorization headers of someone who knows neither the secret nor the token.
var strangers = []string{"", "Bearer", "Bearer ", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret",
	"Bearer " + testSecret[:31], "Bearer " + testSecret + "0", "Basic " + testSecret, testSecret}

func TestAuth(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	// With no configuration, only the secret opens the agent.
	checkAuth(t, serveTest(t, reg, ""), append(strangers, "Bearer s3cret"), []string{testSecret})
	// With LIVECOV_TOKEN, the token does too.
	url := serveTest(t, reg, "s3cret")
	checkAuth(t, url, strangers, []string{testSecret, "s3cret"})
	// The scheme is case-insensitive.
	for _, auth := range []string{"bearer s3cret", "BEARER " + testSecret} {
		req, _ := http.NewRequest("GET", url+"/livecov/v1/counters", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%q: %s", auth, resp.Status)
		}
	}
	// Without a secret, an empty bearer token opens nothing.
	for _, h := range []*handler{{reg: reg}, {reg: reg, secret: func() string { return "" }}} {
		srv := httptest.NewServer(h)
		checkAuth(t, srv.URL, []string{"Bearer ", "Bearer " + testSecret}, nil)
		srv.Close()
	}
}

// TestAgentSecret checks the secret of an agent that listens: it opens the endpoints, and a
// stranger cannot.
func TestAgentSecret(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	a := startTest(t, testConfig(), reg)
	secret := a.processSecret()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(secret) {
		t.Fatalf("secret %q is not 32 hex digits", secret)
	}
	if secret == a.instanceID() || secret != a.processSecret() {
		t.Errorf("secret %q, instance %q", secret, a.instanceID())
	}
	checkAuth(t, agentURL(t, a), append(strangers, "Bearer "+a.instanceID()), []string{secret})

	cfg := testConfig()
	cfg.token = "s3cret"
	b := startTest(t, cfg, reg)
	if b.processSecret() == secret {
		t.Error("two agents made the same secret")
	}
	checkAuth(t, agentURL(t, b), append(strangers, "Bearer "+secret), []string{b.processSecret(), "s3cret"})
}

// checkErrorJSON checks that an error answer is {"error": "..."} and returns the message.
func checkErrorJSON(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	var e map[string]string
	if err := json.Unmarshal(body, &e); err != nil || len(e) != 1 || e["error"] == "" {
		t.Errorf("error body %q is not {\"error\": \"...\"}", body)
	}
	return e["error"]
}

// brokenWriter is a connection that broke: nothing can be written.
type brokenWriter struct{ header http.Header }

func (w *brokenWriter) Header() http.Header         { return w.header }
func (w *brokenWriter) WriteHeader(int)             {}
func (w *brokenWriter) Write(p []byte) (int, error) { return 0, errors.New("broken pipe") }

// serveDirect serves one request with h, authorized with testSecret.
func serveDirect(h *handler, w http.ResponseWriter, method, target string) {
	req := httptest.NewRequest(method, target, nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	h.ServeHTTP(w, req)
}

// A boundary whose answer is lost destroys nothing: the counts still read, and the server's
// retry with the same token gets the answer it missed.
func TestBoundaryNotDeliveredLosesNothing(t *testing.T) {
	for _, mode := range []string{"set", "count", "atomic"} {
		reg, files := testRegistry(t, mode)
		files[0][1], files[2][1] = 4, 1
		if mode == "set" {
			files[0][1] = 1
		}
		want := [][]uint32{{0, files[0][1], 0, 0, 0, 0}, {0}, {0, 1}}
		h := &handler{reg: reg, secret: func() string { return testSecret }}
		serveDirect(h, &brokenWriter{header: http.Header{}}, "POST", "/livecov/v1/boundary?token=lost")

		rec := httptest.NewRecorder()
		serveDirect(h, rec, "GET", "/livecov/v1/counters")
		got, err := decodeCounters(rec.Body.Bytes())
		if err != nil || !equalCounts(got.Files, want) || rec.Header().Get("Livecov-Epoch") != "2" {
			t.Errorf("%s: after a boundary nobody received, counters %v (%v) in epoch %s, want %v in epoch 2",
				mode, got.Files, err, rec.Header().Get("Livecov-Epoch"), want)
		}
		for i := 0; i < 2; i++ {
			rec = httptest.NewRecorder()
			serveDirect(h, rec, "POST", "/livecov/v1/boundary?token=lost")
			got, err = decodeCounters(rec.Body.Bytes())
			if rec.Code != http.StatusOK || err != nil || !equalCounts(got.Files, want) || rec.Header().Get("Livecov-Epoch") != "2" {
				t.Errorf("%s: the retry answered %d %v (%v) in epoch %s, want %v in epoch 2",
					mode, rec.Code, got.Files, err, rec.Header().Get("Livecov-Epoch"), want)
			}
		}
	}
}
