package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// loopbackOnly accepts only 127.0.0.1:PORT: Delve must never listen on, or be reached from, another address.
func loopbackOnly(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("bad address %q: %v", addr, err)
	}
	if host != "127.0.0.1" {
		return "", 0, fmt.Errorf("refusing address %q: only 127.0.0.1 is allowed", addr)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}

// tracerPid reads TracerPid from /proc/PID/status (0 = not traced).
func tracerPid(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "TracerPid:") {
			return strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "TracerPid:")))
		}
	}
	return 0, errors.New("no TracerPid line")
}

// targetState is what /proc says of the debugged process now.
func targetState(pid int) TargetState {
	tp, err := tracerPid(pid)
	if err != nil {
		return TargetState{Alive: false}
	}
	return TargetState{Alive: true, TracerPid: tp}
}
