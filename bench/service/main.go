// Command service is the HTTP service that livecov-bench's service benchmark builds without
// coverage, with Go's and with livecov's, and then puts under load. Its hot code is in a
// dependency: POST /render turns the Markdown of the request body into HTML with goldmark
// and its GFM extension. GET /json encodes a moderately sized order with encoding/json,
// decodes it again and answers the encoding.
//
// It listens on -addr, else $SERVICE_ADDR, else 127.0.0.1:8080.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

var markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))

// render answers the HTML of the Markdown it is sent.
func render(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	src, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var out bytes.Buffer
	if err := markdown.Convert(src, &out); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(out.Bytes())
}

// roundTrip answers the JSON encoding of the sample order, after checking that it decodes
// to the same order.
func roundTrip(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	data, err := json.Marshal(sample)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var back Order
	if err := json.Unmarshal(data, &back); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if back.Total() != sample.Total() || len(back.Items) != len(sample.Items) {
		http.Error(w, "the order changed on the way back", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

func main() {
	def := os.Getenv("SERVICE_ADDR")
	if def == "" {
		def = "127.0.0.1:8080"
	}
	addr := flag.String("addr", def, "listen address")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/render", render)
	mux.HandleFunc("/json", roundTrip)
	fmt.Fprintf(os.Stderr, "service: listening on %s\n", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
