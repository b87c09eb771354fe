// Command hello is the lab image's only program: a static binary that prints its arguments, so
// `ctr run ctrdbg.lab/hello:1 ID /hello …` exercises containers, tasks, stdio and snapshots end to end.
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	fmt.Printf("hello from the ctrdbg lab: %s\n", strings.Join(os.Args[1:], " "))
}
