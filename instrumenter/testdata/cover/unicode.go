package cover

// Größe returns a size. Columns count bytes: é is two, 世 is three.
func Größe(s string) int {
	ß := "日本語 – ünïcödé"
	if len(s) > 0 { return len(ß) } else if s == "世界" { return 3 }
	return 0
}

func 世界(x int) int { if x > 0 { x-- }; return x }
