package cover

func semis(x int) int {
	x++;;
	;
	if x > 0 { x++; x++ };
	for { x++; break };
	switch x { case 1: ; case 2: x++;; }
	return x;
}

func oneLine(x int) int { if x > 0 { return 1 } else { return 2 } }

func emptyStmtOnly() { ; }

func labelSemi(x int) {
L: ;
	x++
	goto L
}
