// Command containerd-shim-runc-v2 is the CRI lab's runc shim, built by `ctrdbg setup lab:cri --with-shim` from
// Debian trixie's packaged containerd 1.7 library source (golang-github-containerd-containerd-dev), which ships
// without any cmd/ main. It is containerd 1.7's own cmd/containerd-shim-runc-v2/main.go: the runc v2 shim
// manager plus the task and pause plugins it serves, nothing of ctrdbg's. (containerd 1.6 has no
// runtime/v2/runc/manager; its main is `shim.Run("io.containerd.runc.v2", v2.New)`.)
package main

import (
	"context"

	"github.com/containerd/containerd/runtime/v2/runc/manager"
	_ "github.com/containerd/containerd/runtime/v2/runc/pause"
	_ "github.com/containerd/containerd/runtime/v2/runc/task/plugin"
	"github.com/containerd/containerd/runtime/v2/shim"
)

func main() {
	shim.RunManager(context.Background(), manager.NewShimManager("io.containerd.runc.v2"))
}
