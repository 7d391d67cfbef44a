// Command etcd is the etcd server, built from the Go module proxy.
// etcd's own main modules carry replace directives, so `go install` cannot build them;
// this module requires the server library and calls its entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
