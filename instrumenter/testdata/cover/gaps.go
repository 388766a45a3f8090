// Blank lines, comment-only lines and brace-only lines inside basic blocks: from Go 1.27 on,
// cover cuts a block at each of them, and rejoins pieces that start inside one statement.
package gaps

import "fmt"

func straight() {
	a := 1
	b := 2

	// a comment line
	c := a + b
	/* a block comment */

	fmt.Println(c)
	/*
		a multi-line
		comment
	*/
	fmt.Println(a) /* trailing
	comment */ fmt.Println(b)
	x := 0; /* // */ x = 1
	_ = x
}

func literals() {
	s := `raw
	// not a comment

	/* nor this */`
	t := "/* no comment */" + `

`
	m := map[string]int{
		"a": 1,

		"b": 2,
	}
	fmt.Println(s, t, m)

	r := '\''
	_ = r
}

func constants() int {
	const (
		A = 1

		B = 2
	)
	var (
		v = A

		w = B
	)
	return v + w
}

func empty() {}

func emptyLines() {

}

func onlyComment() {
	// nothing here
}

func onlyBlockComment() {
	/* nothing
	here */
}

func branches(n int) int {
	if n > 0 {

		n--

	} else if n < -10 {
		// comment first
		n++
	} else {
	}
	switch n {
	case 1:

		n = 2
	case 2:
		// only a comment
	case 3:
	default:
		n = 0

		n++
	}
	for i := 0; i < n; i++ {
		// loop body starts with a comment

		n--
	}
	{

		n *= 2
	}
	return n
}

func labels(n int) {
L:

	n--
	if n > 0 {
		goto L
	}
M:
	// a comment after a label
	for n < 3 {
		n++
		continue M
	}
}

func closures() func() int {
	f := func() int {

		return 1
	}
	go func() {
		// comment
	}()
	defer func() {

	}()
	return f
}

func calls() {
	fmt.Println(
		1,

		2,
	)
	fmt.Println(3)
}

var top = func() int {
	x := 1

	return x
}
