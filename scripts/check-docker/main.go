// Command check-docker checks livecov's Docker files without a Docker engine: it loads a
// compose file with compose-go (the loader `docker compose` itself uses, which validates
// against the Compose Specification's schema), then parses every Dockerfile the file builds
// with BuildKit's own Dockerfile parser, and checks that each `COPY --from` names an earlier
// stage or a build context the compose file provides.
//
// Usage: go run . ../../docker-compose.yml
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: check-docker COMPOSE_FILE")
		os.Exit(2)
	}
	if err := check(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "check-docker:", err)
		os.Exit(1)
	}
}

func check(composeFile string) error {
	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithName("livecov"))
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return fmt.Errorf("%s: %w", composeFile, err)
	}
	for _, name := range project.ServiceNames() {
		svc := project.Services[name]
		if svc.Build == nil {
			fmt.Printf("%s: image %s\n", name, svc.Image)
			continue
		}
		if err := checkBuild(name, svc.Build); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
	}
	return nil
}

func checkBuild(name string, b *types.BuildConfig) error {
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if !filepath.IsAbs(dockerfile) {
		dockerfile = filepath.Join(b.Context, dockerfile)
	}
	f, err := os.Open(dockerfile)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", dockerfile, err)
	}
	for _, w := range res.Warnings {
		return fmt.Errorf("%s: %s", dockerfile, w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", dockerfile, err)
	}
	known := map[string]bool{}
	for ctxName := range b.AdditionalContexts {
		known[ctxName] = true
	}
	for i, st := range stages {
		for _, cmd := range st.Commands {
			c, ok := cmd.(*instructions.CopyCommand)
			if !ok || c.From == "" {
				continue
			}
			if !known[strings.ToLower(c.From)] {
				return fmt.Errorf("%s: stage %d copies from %q, which is neither an earlier stage nor a build context of the compose file", dockerfile, i, c.From)
			}
		}
		if st.Name != "" {
			known[strings.ToLower(st.Name)] = true
		}
	}
	fmt.Printf("%s: builds %s, %d stages\n", name, dockerfile, len(stages))
	return nil
}
