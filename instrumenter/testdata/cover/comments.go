package cover

// A doc comment.
func commented(x int) int {
	// leading comment
	x++ // trailing comment

	/* block
	   comment */
	if x > 0 { // after brace
		// only a comment
	}
	switch x {
	case 1: // after colon
		// comment in clause
	case 2:
		x++
		// trailing comment in clause
	}
	return x /* inline */ + 1
	// after return
}

func emptyWithComment() {
	// nothing here
}
