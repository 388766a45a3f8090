// Command run is the program the rewrite tests instrument, build and run: its blocks run a
// known number of times, and it can panic to show where its stack trace points.
package main

import (
	"fmt"
	"os"
	"sync"
)

func classify(x int) string {
	if x < 0 {
		return "neg"
	}
	if x == 0 {
		return "zero"
	} else if x == 1 {
		return "one"
	} else {
		x--
	}
	switch {
	case x > 100:
		return "huge"
	case x > 10:
		return "big"
	}
	return "pos"
}

func boom() {
	panic("boom")
}

func main() {
	switch arg(1) {
	case "panic":
		boom()
	case "concurrent":
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 1000 {
					classify(i)
				}
			}()
		}
		wg.Wait()
	default:
		for i := -2; i <= 20; i++ {
			classify(i)

			// From Go 1.27, the statement after a gap has a counter of its own.
			_ = i
		}
	}
	fmt.Println("done")
	dump()
}

func arg(i int) string {
	if len(os.Args) > i {
		return os.Args[i]
	}
	return ""
}
