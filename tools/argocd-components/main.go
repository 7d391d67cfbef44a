// Argo CD's application controller and repo-server from the pinned argo-cd release, for the
// side-by-side benchmark (crates/ferry-controller/examples/versus_argocd.rs). One binary, the
// component named by its first argument, as upstream's multi-call binary does by its name.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
)

func main() {
	// The repo-server runs Git with GIT_ASKPASS naming its own binary and this variable.
	if os.Getenv("ARGOCD_BINARY_NAME") == "argocd-git-ask-pass" {
		run(gitaskpass.NewCommand(), os.Args[1:])
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-components application-controller|repo-server [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "application-controller":
		run(appcontroller.NewCommand(), os.Args[2:])
	case "repo-server":
		run(reposerver.NewCommand(), os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "argocd-components: unknown component %q\n", os.Args[1])
		os.Exit(2)
	}
}

func run(command *cobra.Command, args []string) {
	command.SetArgs(args)
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}
