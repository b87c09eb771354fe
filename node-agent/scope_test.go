package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

const scopeFixture = `package main

var fixtureGlobal = 1

//go:noinline
func fixture(request string) *int {
	total := len(request)
	if total > 2 {
		inner := total * 2
		total += inner
	}
	return &total
}

func main() { println(*fixture("abc"), fixtureGlobal) }
`

// buildFixture builds scopeFixture the way ctrdbg builds containerd (-N -l, DWARF kept); go test's own binary
// has no DWARF.
func buildFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(scopeFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module fixture\n\ngo 1.19\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "fixture")
	cmd := exec.Command("go", "build", "-gcflags=all=-N -l", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestScanScopesReadsParamsLocalsAndPackageVarsFromDWARF(t *testing.T) {
	report, err := scanScopes(buildFixture(t), []string{"main.fixture", "main.noSuchFunction"})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Functions) != 2 {
		t.Fatalf("functions %+v", report.Functions)
	}
	got := report.Functions[0]
	if !got.Found || !reflect.DeepEqual(got.Params, []string{"request", "~r0"}) {
		t.Errorf("params %+v", got)
	}
	// total escapes to the heap ("&total" in DWARF): Delve, and so ctrdbg, call it total.
	if !reflect.DeepEqual(got.Locals, []string{"inner", "total"}) {
		t.Errorf("locals %v", got.Locals)
	}
	if !reflect.DeepEqual(got.PackageVars, []string{"fixtureGlobal"}) {
		t.Errorf("package vars %v", got.PackageVars)
	}
	if report.Functions[1].Found {
		t.Error("a missing function was found")
	}
	for _, p := range []string{"main", "runtime", "atomic"} {
		if !contains(report.Packages, p) {
			t.Errorf("packages %v lack %s", report.Packages, p)
		}
	}
}

func TestScanScopesOfABinaryWithoutDWARF(t *testing.T) {
	self, _ := os.Executable()
	if _, err := scanScopes(self, []string{"main.f"}); err == nil {
		t.Error("want an error for go test's own binary, which has no DWARF")
	}
}

func TestPackageOf(t *testing.T) {
	for symbol, want := range map[string]string{
		"github.com/containerd/containerd/services/tasks.(*local).Create": "github.com/containerd/containerd/services/tasks",
		"main.f":                       "main",
		"gopkg.in/yaml%2ev3.Unmarshal": "gopkg.in/yaml%2ev3",
		"nodot":                        "",
	} {
		if got := packageOf(symbol); got != want {
			t.Errorf("packageOf(%q) = %q, want %q", symbol, got, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
