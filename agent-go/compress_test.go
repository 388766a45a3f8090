package agent

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"net/http"
	"strconv"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		fields []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZip"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"gzip, deflate, br"}, true},
		{[]string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, true},
		{[]string{"gzip;q=0.001"}, true},
		{[]string{"gzip ; Q=1"}, true},
		{[]string{"gzip;q=1.000"}, true},
		{[]string{"deflate", "gzip"}, true}, // several fields are one list
		{[]string{"*"}, true},
		{[]string{"*;q=0.5"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0.0"}, false},
		{[]string{"gzip;q=0.000"}, false},
		{[]string{"gzip; q=0"}, false},
		{[]string{"GZIP;Q=0"}, false},
		{[]string{"gzip;q=0, *"}, false},      // refused by name, whatever * says
		{[]string{"*, gzip;q=0"}, false},      // in any order
		{[]string{"gzip, gzip;q=0"}, false},   // refused anywhere is refused
		{[]string{"x-gzip;q=0, gzip"}, false}, // the alias is the same coding
		{[]string{"*;q=0"}, false},
		{[]string{"*;q=0, deflate"}, false},
		{[]string{"identity"}, false},
		{[]string{"deflate, br"}, false},
		{[]string{"gzip;q=1.5"}, false}, // not a weight: the element counts for nothing
		{[]string{"gzip;q=2"}, false},
		{[]string{"gzip;q=0.0001"}, false},
		{[]string{"gzip;q=.5"}, false},
		{[]string{"gzip;q="}, false},
		{[]string{"gzip;q"}, false},
		{[]string{"gzip;q=-1"}, false},
		{[]string{"gzip;q=0.5x"}, false},
		{[]string{"gzip;q=1.001"}, false},
		{[]string{"gzip;q=abc, *"}, true}, // the bad element is ignored, * allows
		{[]string{"gzip;level=9"}, true},  // unknown parameters are ignored
		{[]string{"gzipx, xgzip, gzip-"}, false},
		{[]string{",,, ,"}, false},
	} {
		h := http.Header{}
		for _, f := range tc.fields {
			h.Add("Accept-Encoding", f)
		}
		if got := acceptsGzip(h); got != tc.want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.fields, got, tc.want)
		}
	}
}

// getRaw sends a request without Go's transparent decompression, so that the answer's bytes
// are those sent; acceptEncoding "" sends no Accept-Encoding.
func getRaw(t *testing.T, method, url, acceptEncoding string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testSecret)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, url, resp.Status, body)
	}
	if n, err := strconv.Atoi(resp.Header.Get("Content-Length")); method == "GET" && (err != nil || n != len(body)) {
		t.Errorf("%s %s: Content-Length %q for %d bytes", method, url, resp.Header.Get("Content-Length"), len(body))
	}
	return resp, body
}

func gunzipT(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkEncoding checks an answer's Content-Encoding and Vary and returns its body decoded.
func checkEncoding(t *testing.T, what string, resp *http.Response, body []byte, gzipped bool) []byte {
	t.Helper()
	if got := resp.Header.Get("Vary"); got != "Accept-Encoding" {
		t.Errorf("%s: Vary %q", what, got)
	}
	enc := resp.Header.Get("Content-Encoding")
	if gzipped != (enc == "gzip") || (!gzipped && enc != "") {
		t.Fatalf("%s: Content-Encoding %q, want gzip %v", what, enc, gzipped)
	}
	if gzipped {
		return gunzipT(t, body)
	}
	return body
}

// The profile is gzip-compressed for a client that accepts it, and decompresses to the
// answer a client that does not gets.
func TestProfileGzip(t *testing.T) {
	reg := newRegistry(bigBuild("set", 5000)) // large enough that gzip makes it smaller
	counts := make([]uint32, 5000)
	counts[7], counts[4000] = 1, 1
	reg.add(0, counts)
	url := serveTest(t, reg, "") + "/livecov/v1/profile"
	resp, plain := getRaw(t, "GET", url, "")
	plain = checkEncoding(t, "no Accept-Encoding", resp, plain, false)
	if !bytes.HasPrefix(plain, []byte("mode: set\nexample.com/m/big.go:1.1,1.9 1 0\n")) {
		t.Fatalf("profile starts %q", plain[:60])
	}
	for _, ae := range []string{"gzip", "deflate, gzip;q=0.5", "*"} {
		resp, body := getRaw(t, "GET", url, ae)
		if len(body)*5 > len(plain) {
			t.Errorf("%s: %d bytes compressed, %d plain", ae, len(body), len(plain))
		}
		if got := checkEncoding(t, ae, resp, body, true); !bytes.Equal(got, plain) {
			t.Errorf("%s: decompresses to another profile", ae)
		}
		head, _ := getRaw(t, "HEAD", url, ae)
		if head.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Errorf("%s: HEAD says %s bytes, GET sent %d", ae, head.Header.Get("Content-Length"), len(body))
		}
	}
	for _, ae := range []string{"gzip;q=0", "identity", "br", "*;q=0"} {
		resp, body := getRaw(t, "GET", url, ae)
		if got := checkEncoding(t, ae, resp, body, false); !bytes.Equal(got, plain) {
			t.Errorf("%s: another profile", ae)
		}
	}
}

// The counters and boundary answers are compressed for a client that accepts gzip; a
// boundary asked again with the same token answers the same bytes, compressed or not, and
// its uncompressed bytes are the same whether the first answer was compressed or not.
func TestCountersAndBoundaryGzip(t *testing.T) {
	reg := newRegistry(bigBuild("count", 20000))
	counts := make([]uint32, 20000)
	for i := range counts {
		if i%7 == 0 {
			counts[i] = uint32(i % 13)
		}
	}
	reg.add(0, counts)
	base := serveTest(t, reg, "")

	resp, plain := getRaw(t, "GET", base+"/livecov/v1/counters", "")
	plain = checkEncoding(t, "counters", resp, plain, false)
	resp, gz := getRaw(t, "GET", base+"/livecov/v1/counters", "gzip")
	if got := checkEncoding(t, "counters, gzip", resp, gz, true); !bytes.Equal(got, plain) {
		t.Error("counters: the gzip answer decompresses to other bytes")
	}
	if resp.Header.Get("Livecov-Epoch") != "1" || resp.Header.Get("Livecov-Build") != testBuildID {
		t.Errorf("counters, gzip: header %v", resp.Header)
	}

	boundary := base + "/livecov/v1/boundary?token=b1"
	resp, first := getRaw(t, "POST", boundary, "gzip")
	firstPlain := checkEncoding(t, "boundary", resp, first, true)
	if _, err := decodeCounters(firstPlain); err != nil {
		t.Fatal(err)
	}
	resp, again := getRaw(t, "POST", boundary, "gzip")
	checkEncoding(t, "boundary again", resp, again, true)
	if !bytes.Equal(again, first) {
		t.Error("the same boundary answered other compressed bytes")
	}
	resp, uncompressed := getRaw(t, "POST", boundary, "")
	checkEncoding(t, "boundary again, no gzip", resp, uncompressed, false)
	if !bytes.Equal(uncompressed, firstPlain) {
		t.Error("the same boundary answered other bytes uncompressed")
	}
	if resp.Header.Get("Livecov-Epoch") != "2" {
		t.Errorf("boundary again: Livecov-Epoch %q", resp.Header.Get("Livecov-Epoch"))
	}
}

// An answer that gzip would not make smaller is sent as it is, whatever the client accepts.
func TestSmallAnswerNotCompressed(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	resp, body := getRaw(t, "GET", serveTest(t, reg, "")+"/livecov/v1/counters", "gzip")
	if _, err := decodeCounters(checkEncoding(t, "small counters", resp, body, false)); err != nil {
		t.Fatal(err)
	}
}

// The metadata stays as documented: gzip JSON, the same bytes, whatever the client accepts.
func TestMetaIgnoresAcceptEncoding(t *testing.T) {
	reg, _ := testRegistry(t, "set")
	url := serveTest(t, reg, "") + "/livecov/v1/meta"
	_, want := getRaw(t, "GET", url, "gzip")
	for _, ae := range []string{"", "identity", "gzip;q=0", "br"} {
		resp, body := getRaw(t, "GET", url, ae)
		if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(body, want) {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, %d bytes", ae, resp.Header.Get("Content-Encoding"), len(body))
		}
		if string(gunzipT(t, body)) != reg.build.Meta {
			t.Errorf("Accept-Encoding %q: not the build's metadata", ae)
		}
	}
}

// How much gzip takes from the counters of a 100,000-block build with 10% of its counters
// non-zero at random positions (docs/COUNTERS.md, "Size", cites the figures this logs).
func TestCountersGzipSize(t *testing.T) {
	for _, mode := range []string{"set", "count"} {
		rng := rand.New(rand.NewSource(42))
		files := make([][]uint32, 500)
		for i := range files {
			files[i] = make([]uint32, 200)
			for j := range files[i] {
				if rng.Intn(10) == 0 {
					files[i][j] = 1
					if mode == "count" {
						files[i][j] += uint32(rng.Intn(1000))
					}
				}
			}
		}
		b, err := encodeCounters(nil, counterSet{Build: testBuildID, Mode: mode, Files: files})
		if err != nil {
			t.Fatal(err)
		}
		gz, ok := gzipBytes(b)
		if !ok || len(gz) >= len(b) {
			t.Fatalf("%s: gzip of %d bytes gave %d", mode, len(b), len(gz))
		}
		t.Logf("%s mode, 10%% of 100000 counters non-zero: %d bytes, %d gzip (%.0f%%)", mode, len(b), len(gz), 100*float64(len(gz))/float64(len(b)))
	}
}
