package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/gateway"
)

// listenAddr is an address a command listens on and the flag that sets it.
type listenAddr struct {
	addr, flag string
	reusePort  bool // shared with other gateway processes (--reuseport)
}

// listenAddrs lists the addresses a node with cfg listens on.
func listenAddrs(cfg node.Config) []listenAddr {
	var out []listenAddr
	if cfg.Embedded {
		// Ports <= 0 are chosen by the NATS server or disabled.
		if cfg.NATS.Port > 0 {
			out = append(out, listenAddr{addr: natsAddr(cfg.NATS.Host, cfg.NATS.Port), flag: "--nats-port"})
		}
		if cfg.NATS.HTTPPort > 0 {
			out = append(out, listenAddr{addr: natsAddr(cfg.NATS.Host, cfg.NATS.HTTPPort), flag: "--nats-http-port"})
		}
	}
	if cfg.Roles.Gateway {
		out = append(out, listenAddr{addr: cfg.HTTPAddr, flag: "--http-addr", reusePort: cfg.ReusePort})
	}
	if cfg.DebugAddr != "" {
		out = append(out, listenAddr{addr: cfg.DebugAddr, flag: "--debug-addr"})
	}
	return out
}

// natsAddr is where the embedded NATS server listens on port.
func natsAddr(host string, port int) string {
	if host == "" {
		host = "127.0.0.1" // natsembed.Start's default
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// checkListen fails at once when one of addrs cannot be listened on (taken
// by another process, or by another of addrs), naming the address and its
// flag. Without it a taken NATS port shows only as the embedded server not
// starting within 30 s. The listeners are closed again before it returns.
func checkListen(addrs []listenAddr) error {
	var opened []net.Listener
	defer func() {
		for _, ln := range opened {
			_ = ln.Close()
		}
	}()
	for _, a := range addrs {
		ln, err := gateway.Listen(a.addr, a.reusePort)
		if err != nil {
			return fmt.Errorf("%w (set by %s)", err, a.flag)
		}
		opened = append(opened, ln)
	}
	return nil
}
