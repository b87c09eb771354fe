package main

// `ctrdbg-agent relay`: one debugger client's connection to dlv, through the agent, as root. The relay reads
// the client's requests in whichever protocol the headless dlv serves on that connection (JSON-RPC, or DAP, which
// starts with "Content-Length:"), forwards what is harmless, and never forwards a request that would kill or
// restart the target:
//
//	JSON-RPC  RPCServer.Detach (Kill true or false)    → safe detach (cleanup.go), then the client's answer
//	          RPCServer.Restart                        → an error back to the client
//	DAP       disconnect{terminateDebuggee: true}      → safe detach, then the disconnect response
//	          terminate, restart                       → an error response
//
// A dlv terminal's `exit`, answered with the defaults ("kill the headless instance? Y", "kill the process? Y"),
// sends Detach{Kill:true}: with the relay in between, containerd is detached and keeps running.
// Every decision is reported as a RelayNotice on stderr. Messages are written whole in both directions, so a
// reply the relay makes up never lands inside one of dlv's.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type relay struct {
	address  string
	client   *bufio.Reader
	toClient io.Writer
	upstream net.Conn
	out      sync.Mutex // whole messages to the client
	notices  *eventWriter
	done     chan struct{}
	doneOnce sync.Once
	// answered is closed once the client has the answer to the request that ended the session (a safe detach):
	// dlv exits during that detach, and the relay must not end before the answer is written.
	detachMu sync.Mutex
	answered chan struct{}
}

// beginDetach marks a safe detach under way; the returned func is called once the client has its answer.
func (r *relay) beginDetach() func() {
	r.detachMu.Lock()
	defer r.detachMu.Unlock()
	ch := make(chan struct{})
	r.answered = ch
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// awaitAnswer holds the end of the relay (dlv has gone) until a detach's answer is written, at most 25 s.
func (r *relay) awaitAnswer() {
	r.detachMu.Lock()
	ch := r.answered
	r.detachMu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-time.After(25 * time.Second):
	}
}

func runRelay(args []string) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		usage()
		return exitUsage
	}
	address := fs.Arg(0)
	if _, _, err := loopbackOnly(address); err != nil {
		logf("%v", err)
		return exitUsage
	}
	conn, err := net.DialTimeout("tcp", address, 10*time.Second)
	if err != nil {
		logf("cannot connect to %s: %v", address, err)
		return exitFailure
	}
	defer conn.Close()
	relayConnection(address, conn, os.Stdin, os.Stdout, os.Stderr)
	return exitOK
}

// relayConnection relays one client (in, out) to dlv (upstream) until either side ends; notices go to notices.
func relayConnection(address string, upstream net.Conn, in io.Reader, out io.Writer, notices io.Writer) {
	r := &relay{
		address:  address,
		client:   bufio.NewReaderSize(in, 64*1024),
		toClient: out,
		upstream: upstream,
		notices:  &eventWriter{out: notices},
		done:     make(chan struct{}),
	}
	first, err := r.client.Peek(1)
	if err != nil {
		// The client left before saying anything.
		r.notice(RelayNotice{Action: RelayClientLeft, Protocol: "none"})
		return
	}
	if first[0] == 'C' {
		r.serve("dap", r.dapRequests, r.dapResponses)
	} else {
		r.serve("json-rpc", r.rpcRequests, r.rpcResponses)
	}
}

func (r *relay) notice(n RelayNotice) {
	n.Event = EventRelay
	r.notices.emit(n)
}

func (r *relay) finish() { r.doneOnce.Do(func() { close(r.done) }) }

// serve runs both directions until either ends: the client leaving, dlv closing, or a safe detach.
func (r *relay) serve(protocol string, requests func() error, responses func() error) {
	go func() {
		err := responses()
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			logf("relay: from dlv: %v", err)
		}
		// dlv went away: if that was the safe detach a client asked for, its answer goes out first.
		r.awaitAnswer()
		r.finish()
	}()
	go func() {
		err := requests()
		if errors.Is(err, io.EOF) {
			r.notice(RelayNotice{Action: RelayClientLeft, Protocol: protocol})
			// The client closed its side: pass the half-close on so dlv sees EOF and drops this client, and
			// give dlv a moment to finish answering.
			if tcp, ok := r.upstream.(*net.TCPConn); ok {
				tcp.CloseWrite()
			}
			select {
			case <-r.done:
			case <-time.After(2 * time.Second):
			}
		} else if err != nil && !errors.Is(err, errSessionEnded) {
			logf("relay: from the client: %v", err)
		}
		r.finish()
	}()
	<-r.done
}

// errSessionEnded: the relay ended the debugging session itself (a safe detach): nothing more to relay.
var errSessionEnded = errors.New("the session was ended by a safe detach")

func (r *relay) writeClient(p []byte) error {
	r.out.Lock()
	defer r.out.Unlock()
	_, err := r.toClient.Write(p)
	return err
}

// detachSafely ends the session the safe way for a client that asked to end it.
func (r *relay) detachSafely(protocol, request string) (int, error) {
	logf("relay: %s %s → safe detach", protocol, request)
	cleared, err := safeDetach(r.address, 20*time.Second)
	if err != nil {
		r.notice(RelayNotice{Action: RelayRefused, Protocol: protocol, Request: request, Message: "safe detach failed: " + err.Error()})
		return cleared, err
	}
	r.notice(RelayNotice{Action: RelayDetached, Protocol: protocol, Request: request, Cleared: cleared})
	return cleared, nil
}

// --- JSON-RPC ---

type rpcRequest struct {
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	ID     json.RawMessage   `json:"id"`
}

func (r *relay) rpcReply(id json.RawMessage, result interface{}, message string) error {
	reply := map[string]interface{}{"id": id, "result": result, "error": nil}
	if message != "" {
		reply["result"] = nil
		reply["error"] = message
	}
	line, _ := json.Marshal(reply)
	return r.writeClient(append(line, '\n'))
}

func (r *relay) rpcRequests() error {
	dec := json.NewDecoder(r.client)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		var req rpcRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return fmt.Errorf("not a JSON-RPC request: %v", err)
		}
		switch req.Method {
		case "RPCServer.Detach":
			var args struct{ Kill bool }
			if len(req.Params) > 0 {
				json.Unmarshal(req.Params[0], &args)
			}
			request := fmt.Sprintf("Detach{Kill:%t}", args.Kill)
			answered := r.beginDetach()
			if _, err := r.detachSafely("json-rpc", request); err != nil {
				r.rpcReply(req.ID, nil, "ctrdbg-agent: could not detach safely: "+err.Error())
				answered()
				continue
			}
			r.rpcReply(req.ID, map[string]interface{}{}, "")
			answered()
			return errSessionEnded
		case "RPCServer.Restart":
			message := "ctrdbg refuses Restart: it would restart or kill containerd. Leave with 'exit' (ctrdbg detaches and keeps containerd running)."
			r.notice(RelayNotice{Action: RelayRefused, Protocol: "json-rpc", Request: "Restart"})
			if err := r.rpcReply(req.ID, nil, message); err != nil {
				return err
			}
			continue
		}
		if _, err := r.upstream.Write(append(raw, '\n')); err != nil {
			return err
		}
	}
}

func (r *relay) rpcResponses() error {
	dec := json.NewDecoder(bufio.NewReaderSize(r.upstream, 256*1024))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := r.writeClient(append(raw, '\n')); err != nil {
			return err
		}
	}
}

// --- DAP ---

// readDAP reads one Content-Length framed message.
func readDAP(reader *bufio.Reader) ([]byte, error) {
	headers, err := textproto.NewReader(reader).ReadMIMEHeader()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, io.EOF
		}
		return nil, err
	}
	length, err := strconv.Atoi(strings.TrimSpace(headers.Get("Content-Length")))
	if err != nil || length < 0 {
		return nil, fmt.Errorf("bad DAP Content-Length %q", headers.Get("Content-Length"))
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(reader, body); err != nil {
		return nil, err
	}
	return body, nil
}

func frameDAP(body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

type dapRequest struct {
	Seq       int             `json:"seq"`
	Type      string          `json:"type"`
	Command   string          `json:"command"`
	Arguments json.RawMessage `json:"arguments"`
}

// Sequence numbers for messages the relay makes up, far from dlv's own.
var dapSeq = 1 << 30

func (r *relay) dapSend(message map[string]interface{}) error {
	dapSeq++
	message["seq"] = dapSeq
	body, _ := json.Marshal(message)
	return r.writeClient(frameDAP(body))
}

func (r *relay) dapRespond(req dapRequest, success bool, message string) error {
	response := map[string]interface{}{"type": "response", "request_seq": req.Seq, "command": req.Command, "success": success}
	if message != "" {
		response["message"] = message
		response["body"] = map[string]interface{}{"error": map[string]interface{}{"id": 4000, "format": message, "showUser": true}}
	}
	return r.dapSend(response)
}

func (r *relay) dapConsole(text string) error {
	return r.dapSend(map[string]interface{}{"type": "event", "event": "output", "body": map[string]interface{}{"category": "important", "output": text + "\n"}})
}

func (r *relay) dapRequests() error {
	for {
		body, err := readDAP(r.client)
		if err != nil {
			return err
		}
		var req dapRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("not a DAP message: %v", err)
		}
		if req.Type == "request" {
			switch req.Command {
			case "disconnect":
				var args struct {
					TerminateDebuggee bool `json:"terminateDebuggee"`
				}
				if len(req.Arguments) > 0 {
					json.Unmarshal(req.Arguments, &args)
				}
				if args.TerminateDebuggee {
					answered := r.beginDetach()
					if _, err := r.detachSafely("dap", "disconnect{terminateDebuggee:true}"); err != nil {
						r.dapRespond(req, false, "ctrdbg-agent: could not detach safely: "+err.Error())
						answered()
						continue
					}
					r.dapConsole("ctrdbg: containerd was not terminated: its breakpoints were cleared and the debugger detached; it keeps running.")
					r.dapRespond(req, true, "")
					r.dapSend(map[string]interface{}{"type": "event", "event": "terminated"})
					answered()
					return errSessionEnded
				}
			case "terminate", "restart":
				message := fmt.Sprintf("ctrdbg refuses '%s': it would stop or restart containerd. Disconnect instead (ctrdbg detaches and keeps containerd running).", req.Command)
				r.notice(RelayNotice{Action: RelayRefused, Protocol: "dap", Request: req.Command})
				if err := r.dapRespond(req, false, message); err != nil {
					return err
				}
				continue
			}
		}
		if _, err := r.upstream.Write(frameDAP(body)); err != nil {
			return err
		}
	}
}

func (r *relay) dapResponses() error {
	reader := bufio.NewReaderSize(r.upstream, 256*1024)
	for {
		body, err := readDAP(reader)
		if err != nil {
			return err
		}
		if err := r.writeClient(frameDAP(body)); err != nil {
			return err
		}
	}
}
