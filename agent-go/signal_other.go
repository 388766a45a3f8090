//go:build !unix

package agent

// On systems other than Unix the agent takes no signal: the process ends as Go's default
// handling makes it (see signal.go).
