package cover

func beforeDirectives(x int) int {
	if x > 0 {
		return 1
	}
	return 0
}

//line generated.go:100:1
func afterLineCol(x int) int {
	if x > 0 {
		return 1
	}
	return 0
}

//line other.go:200
func afterLineOnly(x int) int {
	if x > 0 { return 1 }
	if x > 1 { return 1 }
	return 0
}

//line :300:5
func emptyFileName(x int) int {
	if x > 0 {
		return 1
	}
	return 0
}

//line dup.go:10
func dup1() { if true { } }
//line dup.go:10
func dup2() { if true { } }

func inline(x int) int {
	/*line inline.go:50:10*/ if x > 0 {
		return 1
	}
	return 0
}

	//line notadirective.go:5:5
func indented(x int) int {
	if x > 0 {
		return 1
	}
	return 0
}

var literalAfterDirective = func() int {
	if true {
		return 1
	}
	return 0
}
