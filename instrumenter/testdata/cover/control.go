package cover

import (
	"errors"
	"fmt"
	"os"
)

func empty() {
}

func emptyOneLine() {}

func straight(a, b int) int {
	c := a + b
	c *= 2
	return c
}

func ifElse(x int) string {
	if x < 0 {
		return "neg"
	} else if x == 0 {
		return "zero"
	} else if y := x * 2; y > 10 {
		return "big"
	} else {
		return "pos"
	}
}

func ifNoElse(x int) int {
	if x > 3 {
		x--
	}
	if x > 2 {
	}
	if err := do(); err != nil {
		return 0
	}
	return x
}

func elseWithComment(x int) int {
	if x > 0 {
		x++
	} /* a comment */ else /* another */ {
		x--
	}
	if x > 0 {
		x++
	} // trailing
	return x
}

func loops(xs []int, m map[string]int) int {
	total := 0
	for i := 0; i < len(xs); i++ {
		if xs[i] < 0 {
			continue
		}
		total += xs[i]
	}
	for k, v := range m {
		_ = k
		total += v
	}
	for range 3 {
		total++
	}
	for total < 100 {
		total *= 2
	}
	for {
		break
	}
	for i := range 10 {
		if i == 5 {
			break
		}
	}
	return total
}

func switches(x int, v any) string {
	switch {
	case x < 0:
		return "neg"
	case x == 0:
	case x == 1:
		fallthrough
	case x == 2:
		x++
		x++
	default:
		x = 0
	}
	switch y := x; y {
	}
	switch x {
	}
	switch t := v.(type) {
	case int:
		return fmt.Sprint(t)
	case string, error:
	default:
		_ = t
	}
	switch v.(type) {
	}
	return ""
}

func selects(a, b chan int) int {
	select {
	case v := <-a:
		return v
	case b <- 1:
	default:
		return -1
	}
	select {}
}

func panics(x int) {
	if x == 1 {
		panic("one")
		x++
	}
	if x == 2 {
		panic(fmt.Sprint(x))
	}
	if x == 3 {
		panic(errors.New("three"), 1)
	}
	if x == 4 {
		args := []any{1}
		panic(args...)
	}
	if x == 5 {
		(panic)("five")
		x++
	}
	if x == 6 {
		os.Exit(6)
		x++
	}
	defer fmt.Println("deferred")
	go fmt.Println("async")
	x++
}

func blocksInBlocks(x int) int {
	{
		x++
	}
	{
	}
	x++
	{
		{
			x--
		}
	}
	return x
}

func do() error { return nil }

func _() {
	panic("never counted")
}

func bodyless(x int) int
