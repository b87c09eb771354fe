// Command ctrdbg-kubelet is the CRI lab's kubelet stand-in: it drives containerd's CRI plugin with the same
// calls, in the same order, that kubelet makes for a one-container pod, and puts recognisable values in every
// request so a recording shows at a glance which field went where. Built in GOPATH mode against Debian
// trixie's CRI API package (golang-github-kubernetes-cri-api-dev).
//
//	ctrdbg-kubelet run-pod [flags]        RunPodSandbox → ImageStatus (→ PullImage if absent) → CreateContainer →
//	                                      StartContainer → wait for exit → read the log → StopPodSandbox →
//	                                      RemovePodSandbox
//	ctrdbg-kubelet pull [flags]           PullImage with Auth{Username, Password}, by default of an image on a
//	                                      loopback port where no registry listens (the call fails)
//	ctrdbg-kubelet create-orphan [flags]  CreateContainer in a sandbox that does not exist (containerd: NotFound)
//	ctrdbg-kubelet remove-pods [flags]    StopPodSandbox → RemovePodSandbox for every pod, as kubelet does when
//	                                      pods are deleted (`lab down` runs it: CRI unmounts each pod's /dev/shm)
//
// The CRI endpoint is --endpoint, else $CTRDBG_SOCKET (what `ctrdbg attach --trigger` sets), else containerd's
// default socket; pod logs go under --log-root, else $CTRDBG_POD_LOG_ROOT, else /var/log/pods (kubelet's).
// Every call is printed as one line; --json adds a summary object as the last line.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const defaultSocket = "/run/containerd/containerd.sock"

// kv is a repeatable --label / --annotation flag: key=value.
type kv map[string]string

func (m kv) String() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k+"="+m[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (m kv) Set(value string) error {
	k, v, ok := strings.Cut(value, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", value)
	}
	m[k] = v
	return nil
}

// list is a repeatable string flag (--arg).
type list []string

func (l *list) String() string     { return strings.Join(*l, " ") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

type common struct {
	endpoint string
	timeout  time.Duration
	json     bool
}

func (c *common) register(fs *flag.FlagSet) {
	def := os.Getenv("CTRDBG_SOCKET")
	if def == "" {
		def = defaultSocket
	}
	fs.StringVar(&c.endpoint, "endpoint", def, "containerd's CRI socket (default: $CTRDBG_SOCKET, else "+defaultSocket+")")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "give up after this long")
	fs.BoolVar(&c.json, "json", false, "print a JSON summary as the last line")
}

type pod struct {
	name, namespace, uid, hostname, logRoot, logDir, handler string
	attempt                                                  uint
	labels, annotations                                      kv
}

func (p *pod) register(fs *flag.FlagSet) {
	p.labels, p.annotations = kv{}, kv{}
	fs.StringVar(&p.name, "pod-name", "ctrdbg-pod", "pod name (PodSandboxMetadata.Name)")
	fs.StringVar(&p.namespace, "pod-namespace", "ctrdbg-ns", "pod namespace (PodSandboxMetadata.Namespace)")
	fs.StringVar(&p.uid, "pod-uid", "", "pod UID (default: ctrdbg-uid-<random>, so every run is a new pod)")
	fs.UintVar(&p.attempt, "pod-attempt", 0, "pod attempt (PodSandboxMetadata.Attempt)")
	fs.StringVar(&p.hostname, "hostname", "", "pod hostname (default: none; kubelet sets none for host-network pods, whose UTS namespace is the node's)")
	logRoot := os.Getenv("CTRDBG_POD_LOG_ROOT")
	if logRoot == "" {
		logRoot = "/var/log/pods"
	}
	fs.StringVar(&p.logRoot, "log-root", logRoot, "where pod log directories go, like kubelet's /var/log/pods (default: $CTRDBG_POD_LOG_ROOT, else /var/log/pods)")
	fs.StringVar(&p.logDir, "log-dir", "", "the pod log directory (default: <log-root>/<namespace>_<name>_<uid>, as kubelet names it)")
	fs.StringVar(&p.handler, "runtime-handler", "", "RuntimeHandler (empty: containerd's default runtime)")
	fs.Var(p.labels, "pod-label", "pod label key=value (repeatable; default ctrdbg.io/stand-in=pod)")
	fs.Var(p.annotations, "pod-annotation", "pod annotation key=value (repeatable; default ctrdbg.io/note=from-the-stand-in)")
}

func (p *pod) finish() error {
	if p.uid == "" {
		p.uid = "ctrdbg-uid-" + randomHex(4)
	}
	if p.logDir == "" {
		p.logDir = filepath.Join(p.logRoot, fmt.Sprintf("%s_%s_%s", p.namespace, p.name, p.uid))
	}
	if !filepath.IsAbs(p.logDir) {
		abs, err := filepath.Abs(p.logDir)
		if err != nil {
			return err
		}
		p.logDir = abs
	}
	if len(p.labels) == 0 {
		p.labels["ctrdbg.io/stand-in"] = "pod"
	}
	if len(p.annotations) == 0 {
		p.annotations["ctrdbg.io/note"] = "from-the-stand-in"
	}
	// kubelet's own labels on every sandbox: CRI tooling (crictl) reads them.
	p.labels["io.kubernetes.pod.name"] = p.name
	p.labels["io.kubernetes.pod.namespace"] = p.namespace
	p.labels["io.kubernetes.pod.uid"] = p.uid
	return nil
}

func (p *pod) config() *cri.PodSandboxConfig {
	return &cri.PodSandboxConfig{
		Metadata: &cri.PodSandboxMetadata{
			Name: p.name, Namespace: p.namespace, Uid: p.uid, Attempt: uint32(p.attempt),
		},
		Hostname:     p.hostname,
		LogDirectory: p.logDir,
		Labels:       p.labels,
		Annotations:  p.annotations,
		Linux: &cri.LinuxPodSandboxConfig{
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				// Host network: the lab needs no CNI. PID and IPC namespaces are the pod's own, as usual.
				NamespaceOptions: &cri.NamespaceOption{
					Network: cri.NamespaceMode_NODE,
					Pid:     cri.NamespaceMode_POD,
					Ipc:     cri.NamespaceMode_POD,
				},
			},
		},
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b)
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func dial(ctx context.Context, c *common) (*grpc.ClientConn, error) {
	target := c.endpoint
	if !strings.Contains(target, "://") {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", c.endpoint, err)
	}
	// Fail early and clearly when the socket is wrong, rather than at the first call.
	if _, err := cri.NewRuntimeServiceClient(conn).Version(ctx, &cri.VersionRequest{Version: "v1"}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("CRI Version on %s: %w (is this containerd with the CRI plugin?)", c.endpoint, err)
	}
	return conn, nil
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run-pod":
		err = runPod(os.Args[2:])
	case "pull":
		err = pull(os.Args[2:])
	case "create-orphan":
		err = createOrphan(os.Args[2:])
	case "remove-pods":
		err = removePods(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "ctrdbg-kubelet: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			fmt.Fprintf(os.Stderr, "ctrdbg-kubelet: %s\n", exit.msg)
			os.Exit(exit.code)
		}
		fmt.Fprintf(os.Stderr, "ctrdbg-kubelet: %s\n", err)
		os.Exit(1)
	}
}

type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func usage() {
	fmt.Fprint(os.Stderr, `usage: ctrdbg-kubelet run-pod|pull|create-orphan|remove-pods [flags]   (-h after a command lists its flags)
  run-pod        one pod, one container, the calls kubelet makes, then clean up
  pull           PullImage with Auth{Username, Password} (by default of a registry that is not there)
  create-orphan  CreateContainer with a made-up PodSandboxId
  remove-pods    stop and remove every pod sandbox (and so its containers)
`)
}

/* ------------------------------------------------------------------ run-pod */

type container struct {
	name, image, logPath, workingDir string
	command                          string
	detach                           bool
	args                             list
	mounts                           list
	labels, annotations              kv
	pullIfAbsent                     bool
}

// criMounts turns --mount HOST:CONTAINER[:ro] flags into CRI mounts (kubelet's volumes, bind-mounted).
func (ct *container) criMounts() ([]*cri.Mount, error) {
	var out []*cri.Mount
	for _, m := range ct.mounts {
		parts := strings.Split(m, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] != "ro") {
			return nil, exitError{2, fmt.Sprintf("--mount %q: want HOST:CONTAINER or HOST:CONTAINER:ro", m)}
		}
		out = append(out, &cri.Mount{HostPath: parts[0], ContainerPath: parts[1], Readonly: len(parts) == 3})
	}
	return out, nil
}

func runPod(argv []string) error {
	fs := flag.NewFlagSet("run-pod", flag.ContinueOnError)
	var c common
	var p pod
	ct := container{labels: kv{}, annotations: kv{}}
	c.register(fs)
	p.register(fs)
	fs.StringVar(&ct.name, "container-name", "ctrdbg-hello", "container name (ContainerMetadata.Name)")
	fs.StringVar(&ct.image, "image", "ctrdbg.lab/hello:1", "container image")
	fs.StringVar(&ct.logPath, "log-path", "", "container log path, relative to the pod log directory (default: <container>/0.log)")
	fs.StringVar(&ct.command, "command", "/hello", "the container's command")
	fs.Var(&ct.args, "arg", "an argument (repeatable; default: one that names the pod)")
	fs.Var(&ct.mounts, "mount", "a host path bind-mounted into the container, HOST:CONTAINER[:ro] (repeatable; a kubelet volume)")
	fs.Var(ct.labels, "label", "container label key=value (repeatable; default ctrdbg.io/stand-in=container)")
	fs.Var(ct.annotations, "annotation", "container annotation key=value (repeatable; default ctrdbg.io/step=run-pod)")
	fs.BoolVar(&ct.pullIfAbsent, "pull-if-absent", true, "PullImage when ImageStatus finds nothing (kubelet's IfNotPresent)")
	keepLogs := fs.Bool("keep-logs", false, "keep the pod log directory after the pod is removed (kubelet deletes it with the pod)")
	keepPod := fs.Bool("keep-pod", false, "leave the pod running (no StopPodSandbox/RemovePodSandbox), to look at it with ctr -n k8s.io")
	detach := fs.Bool("detach", false, "with -keep-pod: return once the container runs, without waiting for it to exit (a long-lived -command)")
	if err := fs.Parse(argv); err != nil {
		return exitError{2, err.Error()}
	}
	if err := p.finish(); err != nil {
		return err
	}
	if ct.logPath == "" {
		ct.logPath = filepath.Join(ct.name, "0.log")
	}
	if len(ct.args) == 0 {
		ct.args = list{fmt.Sprintf("pod %s/%s says hi", p.namespace, p.name)}
	}
	if len(ct.labels) == 0 {
		ct.labels["ctrdbg.io/stand-in"] = "container"
	}
	if len(ct.annotations) == 0 {
		ct.annotations["ctrdbg.io/step"] = "run-pod"
	}
	ct.labels["io.kubernetes.container.name"] = ct.name
	ct.labels["io.kubernetes.pod.name"] = p.name
	ct.labels["io.kubernetes.pod.namespace"] = p.namespace
	ct.labels["io.kubernetes.pod.uid"] = p.uid

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	conn, err := dial(ctx, &c)
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := cri.NewRuntimeServiceClient(conn)
	img := cri.NewImageServiceClient(conn)

	mounts, err := ct.criMounts()
	if err != nil {
		return err
	}
	summary := map[string]any{
		"pod":       map[string]any{"name": p.name, "namespace": p.namespace, "uid": p.uid, "logDirectory": p.logDir},
		"container": map[string]any{"name": ct.name, "image": ct.image, "logPath": ct.logPath, "command": ct.command, "args": ct.args, "mounts": ct.mounts},
	}
	if err := os.MkdirAll(p.logDir, 0o755); err != nil {
		return err
	}
	sandboxConfig := p.config()
	say("RunPodSandbox    pod %s/%s uid %s (host network, log dir %s)", p.namespace, p.name, p.uid, p.logDir)
	sb, err := rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: sandboxConfig, RuntimeHandler: p.handler})
	if err != nil {
		return fmt.Errorf("RunPodSandbox: %w", err)
	}
	sandboxID := sb.PodSandboxId
	summary["podSandboxId"] = sandboxID
	say("                 → sandbox %s", sandboxID)
	// Like kubelet: whatever happens to the container, the sandbox is stopped and removed.
	ct.detach = *detach && *keepPod
	runErr := runContainer(ctx, rt, img, sandboxID, sandboxConfig, &p, &ct, mounts, summary)
	if *keepPod && runErr == nil {
		say("(pod kept: %s)", sandboxID)
		if c.json {
			out, _ := json.Marshal(summary)
			fmt.Println(string(out))
		}
		return nil
	}
	cleanup, cancelCleanup := context.WithTimeout(context.Background(), time.Minute)
	defer cancelCleanup()
	say("StopPodSandbox   %s", sandboxID)
	if _, err := rt.StopPodSandbox(cleanup, &cri.StopPodSandboxRequest{PodSandboxId: sandboxID}); err != nil {
		return errors.Join(runErr, fmt.Errorf("StopPodSandbox: %w", err))
	}
	say("RemovePodSandbox %s", sandboxID)
	if _, err := rt.RemovePodSandbox(cleanup, &cri.RemovePodSandboxRequest{PodSandboxId: sandboxID}); err != nil {
		return errors.Join(runErr, fmt.Errorf("RemovePodSandbox: %w", err))
	}
	if runErr != nil {
		return runErr
	}
	if !*keepLogs {
		if err := os.RemoveAll(p.logDir); err != nil {
			return fmt.Errorf("removing the pod log directory: %w", err)
		}
	}
	if c.json {
		out, _ := json.Marshal(summary)
		fmt.Println(string(out))
	}
	return nil
}

func runContainer(
	ctx context.Context,
	rt cri.RuntimeServiceClient,
	img cri.ImageServiceClient,
	sandboxID string,
	sandboxConfig *cri.PodSandboxConfig,
	p *pod,
	ct *container,
	mounts []*cri.Mount,
	summary map[string]any,
) error {
	spec := &cri.ImageSpec{Image: ct.image}
	st, err := img.ImageStatus(ctx, &cri.ImageStatusRequest{Image: spec})
	if err != nil {
		return fmt.Errorf("ImageStatus: %w", err)
	}
	if st.Image != nil {
		say("ImageStatus      %s → present (%s)", ct.image, st.Image.Id)
		summary["pulled"] = false
	} else {
		if !ct.pullIfAbsent {
			return fmt.Errorf("ImageStatus: %s is not on the node and --pull-if-absent=false", ct.image)
		}
		say("ImageStatus      %s → absent; PullImage", ct.image)
		pulled, err := img.PullImage(ctx, &cri.PullImageRequest{Image: spec, SandboxConfig: sandboxConfig})
		if err != nil {
			return fmt.Errorf("PullImage: %w", err)
		}
		say("                 → %s", pulled.ImageRef)
		summary["pulled"] = true
	}
	config := &cri.ContainerConfig{
		Metadata:    &cri.ContainerMetadata{Name: ct.name, Attempt: 0},
		Image:       spec,
		Command:     []string{ct.command},
		Args:        ct.args,
		WorkingDir:  ct.workingDir,
		Envs:        []*cri.KeyValue{{Key: "CTRDBG_POD", Value: p.namespace + "/" + p.name}},
		Mounts:      mounts,
		Labels:      ct.labels,
		Annotations: ct.annotations,
		LogPath:     ct.logPath,
		Linux:       &cri.LinuxContainerConfig{},
	}
	say("CreateContainer  %s (image %s, log %s) in %s", ct.name, ct.image, ct.logPath, sandboxID)
	created, err := rt.CreateContainer(ctx, &cri.CreateContainerRequest{
		PodSandboxId: sandboxID, Config: config, SandboxConfig: sandboxConfig,
	})
	if err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	id := created.ContainerId
	summary["containerId"] = id
	say("                 → container %s", id)
	say("StartContainer   %s", id)
	if _, err := rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("StartContainer: %w", err)
	}
	// Wait for the exit the way kubelet's PLEG notices it: by asking for the status.
	var exit *cri.ContainerStatus
	for exit == nil {
		s, err := rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			return fmt.Errorf("ContainerStatus: %w", err)
		}
		if ct.detach && s.Status.State == cri.ContainerState_CONTAINER_RUNNING {
			say("ContainerStatus  %s → running (left running)", id)
			summary["running"] = true
			return nil
		}
		if s.Status.State == cri.ContainerState_CONTAINER_EXITED {
			exit = s.Status
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %s did not exit: %w", id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	say("ContainerStatus  %s → exited %d (%s)", id, exit.ExitCode, exit.Reason)
	summary["exitCode"] = exit.ExitCode
	logFile := exit.LogPath
	if !filepath.IsAbs(logFile) {
		logFile = filepath.Join(p.logDir, logFile)
	}
	summary["logFile"] = logFile
	lines, err := readLog(logFile)
	if err != nil {
		return err
	}
	say("log              %s", logFile)
	for _, l := range lines {
		say("  │ %s", l)
	}
	summary["log"] = lines
	if exit.ExitCode != 0 {
		return exitError{3, fmt.Sprintf("the container exited with %d", exit.ExitCode)}
	}
	return nil
}

// readLog reads a CRI log file: "<RFC3339Nano> <stream> <P|F> <text>" per line.
func readLog(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the container log: %w", err)
	}
	defer f.Close()
	var lines []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		lines = append(lines, scanner.Text())
	}
	return lines, scanner.Err()
}

/* ------------------------------------------------------------------ pull */

// unusedLoopbackPort returns a loopback port nothing listens on: one the kernel just gave us and we closed.
func unusedLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

func pull(argv []string) error {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	var c common
	var p pod
	var image, username, password string
	var expectFailure bool
	c.register(fs)
	p.register(fs)
	fs.StringVar(&image, "image", "", "image to pull (default: 127.0.0.1:<a port where nothing listens>/ctrdbg/private:1)")
	fs.StringVar(&username, "username", "ctrdbg-user", "AuthConfig.Username")
	fs.StringVar(&password, "password", "", "AuthConfig.Password (default: $CTRDBG_PULL_PASSWORD, else a random one)")
	fs.BoolVar(&expectFailure, "expect-failure", false, "exit 0 when the pull fails, 1 when it succeeds")
	if err := fs.Parse(argv); err != nil {
		return exitError{2, err.Error()}
	}
	if err := p.finish(); err != nil {
		return err
	}
	if image == "" {
		port, err := unusedLoopbackPort()
		if err != nil {
			return err
		}
		image = fmt.Sprintf("127.0.0.1:%d/ctrdbg/private:1", port)
	}
	if password == "" {
		password = os.Getenv("CTRDBG_PULL_PASSWORD")
	}
	if password == "" {
		password = "ctrdbg-secret-" + randomHex(8)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	conn, err := dial(ctx, &c)
	if err != nil {
		return err
	}
	defer conn.Close()
	img := cri.NewImageServiceClient(conn)
	// The password is never printed: only its length, so a log of this run is safe to share.
	say("PullImage        %s as %s (password: %d characters)", image, username, len(password))
	resp, err := img.PullImage(ctx, &cri.PullImageRequest{
		Image:         &cri.ImageSpec{Image: image},
		Auth:          &cri.AuthConfig{Username: username, Password: password},
		SandboxConfig: p.config(),
	})
	if err != nil {
		say("                 → failed: %s", status.Convert(err).Message())
		if expectFailure {
			return nil
		}
		return fmt.Errorf("PullImage: %w", err)
	}
	say("                 → %s", resp.ImageRef)
	if expectFailure {
		return exitError{1, "the pull succeeded, but --expect-failure was given"}
	}
	return nil
}

/* ------------------------------------------------------------------ create-orphan */

func createOrphan(argv []string) error {
	fs := flag.NewFlagSet("create-orphan", flag.ContinueOnError)
	var c common
	var p pod
	var sandboxID, name, image string
	c.register(fs)
	p.register(fs)
	fs.StringVar(&sandboxID, "sandbox-id", "", "the made-up PodSandboxId (default: ctrdbg-no-such-sandbox-<random>)")
	fs.StringVar(&name, "container-name", "ctrdbg-orphan", "container name")
	fs.StringVar(&image, "image", "ctrdbg.lab/hello:1", "container image")
	if err := fs.Parse(argv); err != nil {
		return exitError{2, err.Error()}
	}
	if err := p.finish(); err != nil {
		return err
	}
	if sandboxID == "" {
		sandboxID = "ctrdbg-no-such-sandbox-" + randomHex(4)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	conn, err := dial(ctx, &c)
	if err != nil {
		return err
	}
	defer conn.Close()
	say("CreateContainer  %s in made-up sandbox %s", name, sandboxID)
	_, err = cri.NewRuntimeServiceClient(conn).CreateContainer(ctx, &cri.CreateContainerRequest{
		PodSandboxId: sandboxID,
		Config: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: name},
			Image:    &cri.ImageSpec{Image: image},
			LogPath:  filepath.Join(name, "0.log"),
		},
		SandboxConfig: p.config(),
	})
	if status.Code(err) == codes.NotFound {
		say("                 → NotFound, as expected: %s", status.Convert(err).Message())
		return nil
	}
	if err != nil {
		return fmt.Errorf("CreateContainer: expected NotFound, got: %w", err)
	}
	return exitError{1, "CreateContainer succeeded in a sandbox that should not exist"}
}

/* ------------------------------------------------------------------ remove-pods */

func removePods(argv []string) error {
	fs := flag.NewFlagSet("remove-pods", flag.ContinueOnError)
	var c common
	c.register(fs)
	if err := fs.Parse(argv); err != nil {
		return exitError{2, err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	conn, err := dial(ctx, &c)
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := cri.NewRuntimeServiceClient(conn)
	pods, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("ListPodSandbox: %w", err)
	}
	var errs []error
	for _, sb := range pods.Items {
		say("StopPodSandbox   %s (%s/%s)", sb.Id, sb.Metadata.GetNamespace(), sb.Metadata.GetName())
		if _, err := rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("StopPodSandbox %s: %w", sb.Id, err))
			continue
		}
		say("RemovePodSandbox %s", sb.Id)
		if _, err := rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("RemovePodSandbox %s: %w", sb.Id, err))
		}
	}
	if len(pods.Items) == 0 {
		say("no pods")
	}
	return errors.Join(errs...)
}
