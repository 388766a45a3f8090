package cover

func crlf(x int) string {
	if x > 0 {
		return `raw
string`
	}
	// comment
	return "x"
}

//line crlf_gen.go:10:1
func afterDirective() { if true { } }
