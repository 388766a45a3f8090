// Command greeter is a small HTTP service used by livecov's quick start and end-to-end tests:
// a few handlers with branches worth covering.
package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", hello)
	mux.HandleFunc("/calc", calc)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	log.Printf("greeter listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, mux))
}

// hello greets the caller by name, in one of a few languages.
func hello(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.URL.Query().Get("name"))
	if name == "" {
		name = "world"
	}
	switch r.URL.Query().Get("lang") {
	case "fr":
		fmt.Fprintf(w, "Bonjour, %s!\n", name)
	case "de":
		fmt.Fprintf(w, "Hallo, %s!\n", name)
	default:
		fmt.Fprintf(w, "Hello, %s!\n", name)
	}
}

// calc applies op to a and b.
func calc(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a, errA := strconv.Atoi(q.Get("a"))
	b, errB := strconv.Atoi(q.Get("b"))
	if err := errors.Join(errA, errB); err != nil {
		http.Error(w, "a and b must be integers", http.StatusBadRequest)
		return
	}
	result, err := apply(q.Get("op"), a, b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintln(w, result)
}

func apply(op string, a, b int) (int, error) {
	switch op {
	case "add":
		return a + b, nil
	case "sub":
		return a - b, nil
	case "mul":
		return a * b, nil
	case "div":
		if b == 0 {
			return 0, errors.New("division by zero")
		}
		return a / b, nil
	}
	return 0, fmt.Errorf("unknown op %q", op)
}
