package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Ports come from below the ephemeral range (where outgoing connections
// cannot take them before the server binds them), free, never twice.
func TestFreePortOutsideTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low-portFloor <= 1000 {
		t.Skipf("the ephemeral range starts at %d: no room below it", low)
	}
	seen := map[int]bool{}
	for range 50 {
		p, err := Get("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if p < portFloor || p >= low || seen[p] {
			t.Fatalf("port %d: want a new port in [%d, %d)", p, portFloor, low)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		_ = l.Close()
	}
}

// A port in use is never handed out.
func TestFreePortSkipsPortsInUse(t *testing.T) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for range 20 {
		p, err := Get("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d handed out while in use: %v", p, err)
		}
		held = append(held, l)
	}
}
