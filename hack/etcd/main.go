// Command etcd runs the etcd server; gpupool's dev cluster stores its state here.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
