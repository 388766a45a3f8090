package agent

import (
	"bytes"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeCountersExactBytes(t *testing.T) {
	// The example in the format's documentation.
	got, err := encodeCounters(nil, counterSet{
		Build: "ab",
		Mode:  "count",
		Files: [][]uint32{{0, 0, 5, 0, 1, 1, 0, 0}, {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		'L', 'C', 'C', '1', 0x02, 'a', 'b', 0x01, 0x02,
		0x08, 0x02, 0x01, 0x05, 0x01, 0x02, 0x01, 0x01, 0x02, 0x00,
		0x00,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got  % x\nwant % x", got, want)
	}
}

func TestCountersRoundTrip(t *testing.T) {
	sets := []counterSet{
		{Build: testBuildID, Mode: "set", Files: [][]uint32{}},
		{Build: "", Mode: "atomic", Files: [][]uint32{{}}},
		{Build: testBuildID, Mode: "set", Files: [][]uint32{{0, 0, 0}, {1}, {1, 1, 0}, {}}},
		{Build: testBuildID, Mode: "count", Files: [][]uint32{
			{7, 0, 300, 1<<32 - 1, 0, 0, 0, 128},
			make([]uint32, 1000),
		}},
	}
	rng := rand.New(rand.NewSource(1))
	big := make([]uint32, 5000)
	for i := range big {
		if rng.Intn(3) == 0 {
			big[i] = rng.Uint32()
		}
	}
	sets = append(sets, counterSet{Build: testBuildID, Mode: "atomic", Files: [][]uint32{big, big[:1], big[4000:]}})
	for _, s := range sets {
		b, err := encodeCounters(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeCounters(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", s, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("round trip changed the counters:\n got %+v\nwant %+v", got, s)
		}
	}
}

func TestEncodeCountersUnknownMode(t *testing.T) {
	if _, err := encodeCounters(nil, counterSet{Mode: "sometimes"}); err == nil {
		t.Error("unknown mode encoded")
	}
}

func TestDecodeCountersRejects(t *testing.T) {
	valid := []byte{'L', 'C', 'C', '1', 0x02, 'a', 'b', 0x01, 0x01, 0x03, 0x01, 0x01, 0x05, 0x01, 0x00}
	if _, err := decodeCounters(valid); err != nil {
		t.Fatalf("valid input: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "magic"},
		{"bad magic", []byte("LCC2\x00\x00\x00"), "magic"},
		{"id longer than input", []byte("LCC1\x09ab"), "out of range"},
		{"no mode", []byte("LCC1\x00"), "truncated"},
		{"unknown mode", []byte("LCC1\x00\x03\x00"), "unknown mode"},
		{"file count beyond input", []byte("LCC1\x00\x00\x05\x00"), "out of range"},
		{"truncated file", valid[:len(valid)-1], "truncated"},
		{"run beyond file", []byte("LCC1\x00\x00\x01\x02\x01\x02\x05\x05"), "out of range"},
		{"empty run before end", []byte("LCC1\x00\x00\x01\x02\x01\x00"), "before the end"},
		{"zero value in run", []byte("LCC1\x00\x00\x01\x01\x00\x01\x00"), "zero in a run"},
		{"value over 32 bits", []byte("LCC1\x00\x00\x01\x01\x00\x01\x80\x80\x80\x80\x10"), "out of range"},
		{"trailing bytes", append(append([]byte(nil), valid...), 0), "after the last file"},
		{"overlong varint", []byte("LCC1\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), "overflows"},
	} {
		_, err := decodeCounters(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// A build of 100,000 blocks of which 1% ran must travel in well under 20 KB.
func TestEncodeCountersSize(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	files := make([][]uint32, 500)
	for i := range files {
		files[i] = make([]uint32, 200)
	}
	hit := 0
	for hit < 1000 {
		f, i := rng.Intn(len(files)), rng.Intn(200)
		if files[f][i] == 0 {
			files[f][i] = 1 + uint32(rng.Intn(1000))
			hit++
		}
	}
	s := counterSet{Build: testBuildID, Mode: "count", Files: files}
	b, err := encodeCounters(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100000 counters, 1%% non-zero (values 1-1000), in 500 files: %d bytes", len(b))
	if len(b) > 10000 {
		t.Errorf("encoded size %d bytes, want at most 10000", len(b))
	}
	got, err := decodeCounters(b)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Errorf("round trip failed: %v", err)
	}

	one := counterSet{Build: testBuildID, Mode: "set", Files: [][]uint32{make([]uint32, 100000)}}
	for i := 0; i < 1000; i++ {
		one.Files[0][rng.Intn(100000)] = 1
	}
	b, _ = encodeCounters(nil, one)
	t.Logf("100000 counters, about 1%% set, in one file: %d bytes", len(b))
	if len(b) > 10000 {
		t.Errorf("encoded size %d bytes, want at most 10000", len(b))
	}
}
