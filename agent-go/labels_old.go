//go:build !go1.18

package agent

// vcsLabels adds nothing: releases before Go 1.18 stamp no VCS information.
func vcsLabels(add func(key, value string)) {}
