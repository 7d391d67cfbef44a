// The argocd CLI alone, built from the pinned argo-cd release: only cmd/argocd's commands, not the
// server components that upstream's multi-call binary links in as well.
package main

import (
	"os"

	cli "github.com/argoproj/argo-cd/v3/cmd/argocd/commands"
)

func main() {
	if err := cli.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
