// Command nsclient is ctrdbg's benchmark load: it calls containerd's namespaces service over its gRPC socket
// and records each call's latency, so the cost a breakpoint adds to a real call can be measured without
// process start-up noise. Built in GOPATH mode against Debian's containerd library source, like the lab.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

type result struct {
	Op          string    `json:"op"`
	Calls       int       `json:"calls"`
	Concurrency int       `json:"concurrency"`
	Errors      int       `json:"errors"`
	DurationMs  float64   `json:"durationMs"`
	LatenciesMs []float64 `json:"latenciesMs"`
	// -for: when each call started, ms since the first (the longest gap shows how long containerd was paused).
	StartsMs []float64 `json:"startsMs,omitempty"`
	MaxMs    float64   `json:"maxMs"`
}

func main() {
	address := flag.String("address", "", "containerd socket")
	calls := flag.Int("n", 100, "calls in total")
	concurrency := flag.Int("c", 1, "callers at once")
	op := flag.String("op", "get", "get (namespaces Get of \"default\") or create (a new namespace per call)")
	prefix := flag.String("prefix", "bench", "name prefix for -op create")
	out := flag.String("out", "", "write the JSON result here (default stdout)")
	duration := flag.Duration("for", 0, "call one at a time for this long (a probe), instead of -n calls")
	ready := flag.String("ready", "", "with -for: create this file once the first call has returned (SIGINT ends the probe early)")
	flag.Parse()

	client, err := containerd.New(*address, containerd.WithTimeout(10*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "nsclient:", err)
		os.Exit(1)
	}
	defer client.Close()
	store := client.NamespaceService()
	ctx := namespaces.WithNamespace(context.Background(), "default")

	if *duration > 0 {
		probe(store, ctx, *duration, *ready, *out)
		return
	}
	res := result{Op: *op, Calls: *calls, Concurrency: *concurrency, LatenciesMs: make([]float64, *calls)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	start := time.Now()
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				var err error
				if *op == "create" {
					err = store.Create(ctx, fmt.Sprintf("%s-%d-%d", *prefix, os.Getpid(), i), nil)
				} else {
					_, err = store.Labels(ctx, "default")
				}
				ms := float64(time.Since(t).Microseconds()) / 1000
				mu.Lock()
				res.LatenciesMs[i] = ms
				if err != nil {
					res.Errors++
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < *calls; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	for _, l := range res.LatenciesMs {
		if l > res.MaxMs {
			res.MaxMs = l
		}
	}
	write(res, *out)
}

// probe calls Labels one at a time for d: a call that spans a pause of containerd takes as long as the pause.
func probe(store interface {
	Labels(ctx context.Context, name string) (map[string]string, error)
}, ctx context.Context, d time.Duration, ready, out string) {
	res := result{Op: "probe", Concurrency: 1}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	start := time.Now()
	for time.Since(start) < d && len(stop) == 0 {
		t := time.Now()
		_, err := store.Labels(ctx, "default")
		l := float64(time.Since(t).Microseconds()) / 1000
		res.Calls++
		if err != nil {
			res.Errors++
		}
		res.StartsMs = append(res.StartsMs, float64(t.Sub(start).Microseconds())/1000)
		res.LatenciesMs = append(res.LatenciesMs, l)
		if l > res.MaxMs {
			res.MaxMs = l
		}
		if ready != "" && res.Calls == 1 {
			os.WriteFile(ready, nil, 0o644)
		}
	}
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	write(res, out)
}

func write(res result, out string) {
	data, _ := json.Marshal(res)
	if out == "" {
		fmt.Println(string(data))
	} else if err := os.WriteFile(out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "nsclient:", err)
		os.Exit(1)
	}
}
