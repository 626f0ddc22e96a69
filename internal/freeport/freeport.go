// Package freeport hands out free TCP ports for servers Shipline starts
// itself (the embedded Temporal server, test servers).
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// A port the kernel picks
// (listen on :0) comes from the ephemeral range, which outgoing connections
// use too: between the moment it is found free and the moment the server
// binds it, a connection of this or another process may take it, and the
// Temporal server then stops the process ("Failed to serve on … listener").
// Ports are therefore taken below the ephemeral range, at random (so that
// processes starting servers at once rarely pick the same), never twice by
// one process, and checked free by listening on them.

// portFloor is the lowest port handed out.
const portFloor = 20000

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Get returns a port free on ip, outside the ephemeral range, that this
// process has not handed out before.
func Get(ip string) (int, error) {
	low, high := portFloor, ephemeralLow()
	handedOut.Lock()
	defer handedOut.Unlock()
	if high-low > 1000 {
		for range 200 {
			p := low + rand.IntN(high-low)
			if handedOut.ports[p] || !free(ip, p) {
				continue
			}
			handedOut.ports[p] = true
			return p, nil
		}
	}
	// No room below the ephemeral range (or it is all taken): let the
	// kernel choose.
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !handedOut.ports[p] {
			handedOut.ports[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("find a free port on %s: every port offered was handed out before", ip)
}

func free(ip string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// ephemeralLow is the first port of the ephemeral range (Linux:
// /proc/sys/net/ipv4/ip_local_port_range; elsewhere the IANA range's start).
func ephemeralLow() int {
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 0 {
				return n
			}
		}
	}
	return 49152
}
