// Command containerd is the CRI lab's containerd: Debian trixie's packaged containerd 1.7 library source
// (golang-github-containerd-containerd-dev, unpacked into ctrdbg's private toolchain prefix) wired into a
// daemon. Debian ships that library without cmd/containerd (neither its main nor its command package), so
// this small main does what the daemon's entry point does for the lab: read the config file, apply the
// command-line overrides the lab service passes (--config, --log-level), create the server with every
// built-in plugin a stock Linux 1.7 daemon loads — CRI included — serve gRPC, ttrpc and the optional debug
// socket, and stop cleanly on SIGTERM/SIGINT. SIGUSR1 dumps every goroutine's stack, as containerd does.
//
// Left out: the btrfs (cgo), devmapper, zfs and aufs snapshotters and OpenTelemetry tracing (a stock daemon
// skips them on the lab too), the Windows/FreeBSD pieces, and the `config`/`oci-hook`/`publish` subcommands
// (1.7 shims publish events over ttrpc, not through `containerd publish`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/services/server"
	srvconfig "github.com/containerd/containerd/services/server/config"
	"github.com/containerd/containerd/sys"
	"github.com/containerd/containerd/version"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	// Built-in plugins: the event exchange first (every service that publishes events needs it).
	_ "github.com/containerd/containerd/events/plugin"

	_ "github.com/containerd/containerd/diff/walking/plugin"
	_ "github.com/containerd/containerd/gc/scheduler"
	_ "github.com/containerd/containerd/leases/plugin"
	_ "github.com/containerd/containerd/metadata/plugin"
	_ "github.com/containerd/containerd/metrics/cgroups"
	_ "github.com/containerd/containerd/pkg/nri/plugin"
	_ "github.com/containerd/containerd/plugins/sandbox"
	_ "github.com/containerd/containerd/plugins/streaming"
	_ "github.com/containerd/containerd/plugins/transfer"
	_ "github.com/containerd/containerd/runtime/restart/monitor"
	_ "github.com/containerd/containerd/runtime/v1/linux"
	_ "github.com/containerd/containerd/runtime/v2"
	_ "github.com/containerd/containerd/runtime/v2/runc/options"
	_ "github.com/containerd/containerd/services/containers"
	_ "github.com/containerd/containerd/services/content"
	_ "github.com/containerd/containerd/services/diff"
	_ "github.com/containerd/containerd/services/events"
	_ "github.com/containerd/containerd/services/healthcheck"
	_ "github.com/containerd/containerd/services/images"
	_ "github.com/containerd/containerd/services/introspection"
	_ "github.com/containerd/containerd/services/leases"
	_ "github.com/containerd/containerd/services/namespaces"
	_ "github.com/containerd/containerd/services/opt"
	_ "github.com/containerd/containerd/services/sandbox"
	_ "github.com/containerd/containerd/services/snapshots"
	_ "github.com/containerd/containerd/services/streaming"
	_ "github.com/containerd/containerd/services/tasks"
	_ "github.com/containerd/containerd/services/transfer"
	_ "github.com/containerd/containerd/services/version"
	_ "github.com/containerd/containerd/services/warning"
	_ "github.com/containerd/containerd/snapshots/blockfile/plugin"
	_ "github.com/containerd/containerd/snapshots/native/plugin"
	_ "github.com/containerd/containerd/snapshots/overlay/plugin"

	// The CRI plugin (io.containerd.grpc.v1 cri): both of 1.7's CRI servers, pkg/cri/server and
	// pkg/cri/sbserver (the latter used only with ENABLE_CRI_SANDBOXES), are compiled in.
	_ "github.com/containerd/containerd/pkg/cri"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "containerd: %s\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("containerd", flag.ContinueOnError)
	var (
		configPath = flags.String("config", filepath.Join(defaults.DefaultConfigDir, "config.toml"), "path to the configuration file")
		logLevel   = flags.String("log-level", "", "set the logging level [trace, debug, info, warn, error, fatal, panic]")
		address    = flags.String("address", "", "address for containerd's gRPC server")
		root       = flags.String("root", "", "containerd root directory")
		state      = flags.String("state", "", "containerd state directory")
		showVer    = flags.Bool("version", false, "print the version")
	)
	// The short forms containerd's own CLI accepts.
	flags.StringVar(configPath, "c", *configPath, "short for --config")
	flags.StringVar(logLevel, "l", "", "short for --log-level")
	flags.StringVar(address, "a", "", "short for --address")
	flags.BoolVar(showVer, "v", false, "short for --version")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *showVer {
		// The same line as a stock daemon: `containerd <package> <version> <revision>`.
		fmt.Printf("containerd %s %s %s\n", version.Package, version.Version, version.Revision)
		return nil
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unknown command %q: the lab's containerd only runs the daemon", flags.Arg(0))
	}

	config := &srvconfig.Config{
		Version: 2,
		Root:    defaults.DefaultRootDir,
		State:   defaults.DefaultStateDir,
		GRPC: srvconfig.GRPCConfig{
			Address:        defaults.DefaultAddress,
			MaxRecvMsgSize: defaults.DefaultMaxRecvMsgSize,
			MaxSendMsgSize: defaults.DefaultMaxSendMsgSize,
		},
		DisabledPlugins: []string{},
		RequiredPlugins: []string{},
	}
	if err := srvconfig.LoadConfig(*configPath, config); err != nil && !os.IsNotExist(err) {
		return err
	}
	if *address != "" {
		config.GRPC.Address = *address
	}
	if *root != "" {
		config.Root = *root
	}
	if *state != "" {
		config.State = *state
	}
	if *logLevel != "" {
		config.Debug.Level = *logLevel
	}
	if config.Debug.Level != "" {
		if err := log.SetLevel(config.Debug.Level); err != nil {
			return err
		}
	}
	if config.GRPC.Address == "" {
		return errors.New("grpc address cannot be empty")
	}
	if config.TTRPC.Address == "" {
		config.TTRPC.Address = config.GRPC.Address + ".ttrpc"
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGPIPE)

	started := time.Now()
	log.G(ctx).WithFields(log.Fields{
		"version":  version.Version,
		"revision": version.Revision,
	}).Info("starting containerd (ctrdbg CRI lab main)")
	if err := server.CreateTopLevelDirectories(config); err != nil {
		return err
	}
	srv, err := server.New(ctx, config)
	if err != nil {
		return err
	}
	serve := func(what string, listen func() (net.Listener, error), fn func(net.Listener) error) error {
		l, err := listen()
		if err != nil {
			return fmt.Errorf("failed to get listener for %s: %w", what, err)
		}
		go func() {
			if err := fn(l); err != nil && !errors.Is(err, net.ErrClosed) {
				log.G(ctx).WithError(err).WithField("address", l.Addr()).Fatalf("serving %s failed", what)
			}
		}()
		return nil
	}
	unixSocket := func(path string, uid, gid int) func() (net.Listener, error) {
		return func() (net.Listener, error) { return sys.GetLocalListener(path, uid, gid) }
	}
	if config.Debug.Address != "" {
		if err := serve("debug", unixSocket(config.Debug.Address, config.Debug.UID, config.Debug.GID), srv.ServeDebug); err != nil {
			return err
		}
	}
	if config.Metrics.Address != "" {
		tcp := func() (net.Listener, error) { return net.Listen("tcp", config.Metrics.Address) }
		if err := serve("metrics", tcp, srv.ServeMetrics); err != nil {
			return err
		}
	}
	if err := serve("ttrpc", unixSocket(config.TTRPC.Address, config.TTRPC.UID, config.TTRPC.GID), srv.ServeTTRPC); err != nil {
		return err
	}
	if config.GRPC.TCPAddress != "" {
		tcp := func() (net.Listener, error) { return net.Listen("tcp", config.GRPC.TCPAddress) }
		if err := serve("grpc-tcp", tcp, srv.ServeTCP); err != nil {
			return err
		}
	}
	if err := serve("grpc", unixSocket(config.GRPC.Address, config.GRPC.UID, config.GRPC.GID), srv.ServeGRPC); err != nil {
		return err
	}
	go func() {
		srv.Wait()
		log.G(ctx).Infof("containerd successfully booted in %fs", time.Since(started).Seconds())
	}()

	for s := range signals {
		switch s {
		case unix.SIGUSR1:
			dumpStacks(ctx)
		case unix.SIGPIPE:
			// A client that went away mid-write; never a reason to stop.
		default:
			log.G(ctx).WithField("signal", s).Info("stopping containerd")
			srv.Stop()
			return nil
		}
	}
	return nil
}

// dumpStacks writes every goroutine's stack to the log and to $TMPDIR/containerd.<pid>.stacks.log.
func dumpStacks(ctx context.Context) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	log.G(ctx).Infof("=== BEGIN goroutine stack dump ===\n%s\n=== END goroutine stack dump ===", buf)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("containerd.%d.stacks.log", os.Getpid()))
	if err := os.WriteFile(path, buf, 0o600); err == nil {
		log.G(ctx).Infof("goroutine stack dump written to %s", strings.TrimSpace(path))
	}
}
