package main

// `ctrdbg-agent scope --pid PID FUNCTION…`: what names an expression may use at each function, read from the
// DWARF of the process's own binary (/proc/PID/exe) without stopping it — its parameters and locals, the package
// variables of its package, and the short names of every package in the binary. `ctrdbg sets check` warns with
// it about a record expression that names a variable the function does not have (a typo such as `rq.Name` would
// otherwise only say `<eval error>` at each hit).

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// FunctionScope is what one function sees.
type FunctionScope struct {
	Function string   `json:"function"`
	Found    bool     `json:"found"`
	Params   []string `json:"params,omitempty"`
	Locals   []string `json:"locals,omitempty"`
	// PackageVars are the package-level variables of the function's package, by their short name.
	PackageVars []string `json:"packageVars,omitempty"`
}

// ScopeReport is what `scope` prints: one JSON object.
type ScopeReport struct {
	Binary    string          `json:"binary"`
	Functions []FunctionScope `json:"functions"`
	// Packages holds the names a package can go by in an expression (the last element of its import path, and
	// the one before a /vN suffix).
	Packages []string `json:"packages"`
	Error    string   `json:"error,omitempty"`
}

func runScope(args []string) int {
	fs := flag.NewFlagSet("scope", flag.ContinueOnError)
	pid := fs.Int("pid", 0, "the process whose binary to read")
	binary := fs.String("binary", "", "read this binary instead of /proc/PID/exe")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	file := *binary
	if file == "" {
		if *pid <= 0 {
			logf("scope needs --pid or --binary")
			return exitUsage
		}
		file = fmt.Sprintf("/proc/%d/exe", *pid)
	}
	report, err := scanScopes(file, fs.Args())
	if err != nil {
		report = ScopeReport{Binary: file, Error: err.Error()}
	}
	line, _ := json.Marshal(report)
	fmt.Println(string(line))
	if err != nil {
		return exitFailure
	}
	return exitOK
}

var versionSuffix = regexp.MustCompile(`^v[0-9]+$`)

// packageOf is the import path of a Go symbol: "a/b/c.(*T).M" → "a/b/c" (dots after the last slash belong to
// the name, except in the path's own last element such as "gopkg.in/yaml.v3").
func packageOf(symbol string) string {
	slash := strings.LastIndex(symbol, "/")
	dot := strings.Index(symbol[slash+1:], ".")
	if dot < 0 {
		return ""
	}
	return symbol[:slash+1+dot]
}

func scanScopes(file string, functions []string) (ScopeReport, error) {
	report := ScopeReport{Binary: file, Functions: []FunctionScope{}}
	f, err := elf.Open(file)
	if err != nil {
		return report, err
	}
	defer f.Close()
	data, err := f.DWARF()
	if err != nil {
		return report, fmt.Errorf("no DWARF debug info: %v", err)
	}
	wanted := map[string]*FunctionScope{}
	wantedPackages := map[string][]string{}
	for _, fn := range functions {
		if _, ok := wanted[fn]; ok {
			continue
		}
		wanted[fn] = &FunctionScope{Function: fn}
		wantedPackages[packageOf(fn)] = nil
	}
	packages := map[string]bool{}
	r := data.Reader()
	for {
		entry, err := r.Next()
		if err != nil {
			return report, err
		}
		if entry == nil {
			break
		}
		switch entry.Tag {
		case dwarf.TagCompileUnit:
			if name, ok := entry.Val(dwarf.AttrName).(string); ok {
				base := path.Base(name)
				packages[base] = true
				if versionSuffix.MatchString(base) {
					packages[path.Base(path.Dir(name))] = true
				}
			}
			// Its children (functions, variables, types) follow.
			continue
		case dwarf.TagSubprogram:
			name, _ := entry.Val(dwarf.AttrName).(string)
			scope := wanted[name]
			if scope == nil || !entry.Children {
				r.SkipChildren()
				continue
			}
			scope.Found = true
			if err := collectVariables(r, scope); err != nil {
				return report, err
			}
			continue
		case dwarf.TagVariable:
			// A package-level variable, named "import/path.name".
			if name, ok := entry.Val(dwarf.AttrName).(string); ok {
				pkg := packageOf(name)
				if vars, ok := wantedPackages[pkg]; ok {
					wantedPackages[pkg] = append(vars, name[len(pkg)+1:])
				}
			}
		}
		if entry.Children {
			r.SkipChildren()
		}
	}
	for _, fn := range functions {
		scope := wanted[fn]
		if scope == nil {
			continue
		}
		delete(wanted, fn)
		scope.Params = uniqueSorted(scope.Params)
		scope.Locals = uniqueSorted(scope.Locals)
		scope.PackageVars = uniqueSorted(wantedPackages[packageOf(fn)])
		report.Functions = append(report.Functions, *scope)
	}
	for p := range packages {
		report.Packages = append(report.Packages, p)
	}
	sort.Strings(report.Packages)
	return report, nil
}

// collectVariables reads a function's children: its parameters and its locals, in nested blocks too.
func collectVariables(r *dwarf.Reader, scope *FunctionScope) error {
	depth := 1
	for depth > 0 {
		entry, err := r.Next()
		if err != nil {
			return err
		}
		if entry == nil {
			return nil
		}
		if entry.Tag == 0 {
			depth--
			continue
		}
		name, _ := entry.Val(dwarf.AttrName).(string)
		switch entry.Tag {
		case dwarf.TagFormalParameter:
			if name != "" {
				scope.Params = append(scope.Params, name)
			}
		case dwarf.TagVariable:
			// "&x" is a variable moved to the heap; Delve calls it x.
			if name = strings.TrimPrefix(name, "&"); name != "" {
				scope.Locals = append(scope.Locals, name)
			}
		case dwarf.TagLexDwarfBlock, dwarf.TagInlinedSubroutine:
			// Their children are this function's too.
		default:
			if entry.Children {
				r.SkipChildren()
			}
			continue
		}
		if entry.Children {
			depth++
		}
	}
	return nil
}

func uniqueSorted(names []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
