//go:build go1.18

package agent

import "runtime/debug"

// vcsLabels adds the revision the binary was built from, and whether the tree had changes
// beside it, as `go build` stamped them (-buildvcs, on by default in a checkout).
func vcsLabels(add func(key, value string)) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && s.Value != "":
			add("vcs.revision", s.Value)
		case s.Key == "vcs.modified" && s.Value == "true":
			add("vcs.modified", "true")
		}
	}
}
