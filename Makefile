# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build
.PHONY: deps build test test-unit lint format bench demo demo-vm demo-cri clean

deps:
	@scripts/bootstrap

build: deps
	@npx tsc -p tsconfig.json

# Style (Biome), the house plan (imports only point down the pipeline: .dependency-cruiser.cjs), the agent's go vet.
lint: deps
	@npx biome check src test
	@npx depcruise src --config .dependency-cruiser.cjs --output-type err
	@cd node-agent && GOFLAGS=-mod=mod GOPROXY=off go vet ./...

format: deps
	@npx biome format --write src test

# Every suite (unit, integration against the lab, slow ones); ends with "N passed, N failed".
test: build lint
	@scripts/run-tests

test-unit: build
	@scripts/run-tests --project unit

bench: build
	@scripts/bench/run

demo: build
	@scripts/demo

# The same flow on a Debian VM (QEMU) where containerd is a systemd unit, like a minikube kvm2 node.
demo-vm: build
	@scripts/demo-vm

# A CRI node: trixie's containerd 1.7.24 with CRI, Go 1.24 + Delve 1.24, a kubelet stand-in running real pods.
demo-cri: build
	@scripts/demo-cri

clean:
	rm -rf dist .out
