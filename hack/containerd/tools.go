//go:build tools

// Package tools pins the containerd commands the dev cluster's real node runs: the daemon,
// the runc shim and ctr (used to import the locally built images).
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
