package cover

import (
	"iter"
	"sort"
	"sync"
)

var pkgLevel = func(x int) int {
	if x > 0 {
		return x
	}
	return -x
}

var (
	a, b = func() int { return 1 }(), func() int {
		return 2
	}()
	table = map[string]func() int{
		"one": func() int { return 1 },
		"two": func() int {
			x := 1
			return x + 1
		},
	}
)

func inHeaders(xs []int) int {
	if f := func() bool { return len(xs) > 0 }; f() {
		xs = xs[1:]
	}
	if func() bool { return true }() {
		xs = nil
	}
	for i := func() int { return 0 }(); i < func() int { return 3 }(); i += func() int { return 1 }() {
		_ = i
	}
	for _, x := range func() []int { return xs }() {
		_ = x
	}
	switch y := func() int { return 1 }(); y {
	case 1:
	}
	switch func() int { return 2 }() {
	case func() int { return 2 }():
		xs = nil
	case 3:
	}
	switch t := func() any { return 1 }(); t.(type) {
	case int:
	}
	switch v := func() any { return 1 }().(type) {
	case int:
		_ = v
	}
	return len(xs)
}

func inStatements(m *sync.Mutex) (result int) {
	defer func() {
		m.Unlock()
	}()
	go func() {
		m.Lock()
	}()
	f := func(a int) int { return a * 2 }
	result = f(2)
	sort.Slice([]int{}, func(i, j int) bool { return i < j })
	g := func() func() int {
		return func() int {
			return 3
		}
	}
	result += g()()
	return func() int { return result }()
}

func twoLiterals() (int, int) {
	x, y := func() int { return 1 }(), func() int { return 2 }()
	return x, y
}

func Seq(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

func rangeOverFunc() int {
	sum := 0
	for v := range Seq(4) {
		if v == 2 {
			continue
		}
		sum += v
	}
	for v := range func(yield func(int) bool) {
		yield(1)
	} {
		sum += v
	}
	return sum
}
