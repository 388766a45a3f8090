package cover

func gotos(x int) int {
	if x > 10 {
		goto done
	}
	x++
loop:
	x++
	if x < 5 {
		goto loop
	}
done:
	return x
}

func labeledControl(xs [][]int) int {
	n := 0
outer:
	for _, row := range xs {
		for _, v := range row {
			if v < 0 {
				continue outer
			}
			if v == 0 {
				break outer
			}
			n += v
		}
	}
sw:
	switch n {
	case 1:
		break sw
	}
sel:
	select {
	default:
		break sel
	}
	return n
}

func labelAtEnd(x int) {
	x++
end:
}

func labelOnly() {
only:
}

func stackedLabels(x int) int {
a:
b:
	x++
	if x < 3 {
		goto a
	}
	if x < 4 {
		goto b
	}
	return x
}

func labeledBlock(x int) int {
blk:
	{
		x++
	}
	if x > 100 {
		goto blk
	}
	return x
}

func labelInClause(x int) int {
	switch x {
	case 1:
	again:
		x++
		if x < 3 {
			goto again
		}
	}
	return x
}
