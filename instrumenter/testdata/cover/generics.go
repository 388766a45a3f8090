package cover

type Number interface {
	~int | ~int64 | ~float64
}

type Stack[T any] struct {
	items []T
}

func (s *Stack[T]) Push(v T) {
	s.items = append(s.items, v)
}

func (s *Stack[T]) Pop() (T, bool) {
	var zero T
	if len(s.items) == 0 {
		return zero, false
	}
	v := s.items[len(s.items)-1]
	s.items = s.items[:len(s.items)-1]
	return v, true
}

func (s Stack[T]) Len() int { return len(s.items) }

type Plain struct{ n int }

func (p Plain) Value() int { return p.n }

func (p *Plain) Inc() { p.n++ }

func (Plain) Anonymous() {}

func (p (*Plain)) Paren() {}

func Sum[N Number](xs ...N) N {
	var total N
	for _, x := range xs {
		total += x
	}
	return total
}

func Map[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

func useGenerics() int {
	s := &Stack[int]{}
	s.Push(1)
	panic[int](1)
	return Sum[int](1, 2) + len(Map([]int{1}, func(i int) string { return "" }))
}

func panic[T any](x T) {}

// Go 1.26: new takes an expression as well as a type.
func newExpr(x int) *int {
	p := new(42)
	q := new(x + 1)
	if *p > *q {
		return new(int)
	}
	s := new([]int)
	_ = s
	return new(useGenerics())
}
