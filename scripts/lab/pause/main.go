// Command pause is the CRI lab's sandbox image program (its `sandbox_image`): like Kubernetes' pause
// container, it holds the pod's namespaces open and does nothing else until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
