package board

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseNet(t *testing.T) {
	n, err := ParseNet("02:00:00:4d:51:01", "10.0.0.1/24, fd00::1/64", "10.0.0.2", "")
	if err != nil {
		t.Fatal(err)
	}
	if n.MAC.String() != "02:00:00:4d:51:01" {
		t.Errorf("MAC %v", n.MAC)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}
	if len(n.Addrs) != 2 || n.Addrs[0] != want[0] || n.Addrs[1] != want[1] {
		t.Errorf("Addrs %v, want %v", n.Addrs, want)
	}
	if n.Gateway4 != netip.MustParseAddr("10.0.0.2") || n.Gateway6.IsValid() {
		t.Errorf("gateways %v %v", n.Gateway4, n.Gateway6)
	}
}

func TestParseNetRejects(t *testing.T) {
	for _, tc := range []struct{ mac, addrs, gw4, gw6 string }{
		{"zz", "", "", ""},
		{"02:00:00:00:00:00:00:01", "", "", ""}, // 8 octets
		{"", "10.0.0.1", "", ""},                // no prefix length
		{"", "", "fd00::1", ""},                 // v6 as v4 gateway
		{"", "", "", "10.0.0.1"},                // v4 as v6 gateway
	} {
		if _, err := ParseNet(tc.mac, tc.addrs, tc.gw4, tc.gw6); err == nil {
			t.Errorf("ParseNet(%q, %q, %q, %q) accepted", tc.mac, tc.addrs, tc.gw4, tc.gw6)
		}
	}
}

func TestOpenWithoutDriver(t *testing.T) {
	b := &Board{Name: "pizero"}
	if _, err := b.Open(); !errors.Is(err, ErrNoNIC) {
		t.Fatalf("Open on a board without NIC: %v, want ErrNoNIC", err)
	}
}
