package broker

import (
	"fmt"
	"net/netip"

	"github.com/musqratt/musqratt/broker/topic"
)

// Access is optional access control. The zero value allows everything.
type Access struct {
	// Networks, if not empty, are the only address ranges clients may use (CONNECT,
	// QoS -1 PUBLISH, SEARCHGW). Others get CONNACK "not supported" or silence.
	Networks []netip.Prefix
	// ClientIDs, if not empty, are the only client ids that may connect.
	ClientIDs map[string]bool
	// Rules decide publish and subscribe per client and topic: the first rule whose
	// client and action match and whose filter covers the topic wins. With rules
	// present and none matching, the action is denied.
	Rules []Rule
}

// Action is what a Rule governs.
type Action uint8

const (
	ActionPublish Action = 1 << iota
	ActionSubscribe
	ActionBoth = ActionPublish | ActionSubscribe
)

// Rule allows or denies an action on topics matching Filter for a client ("*" for any,
// "-" for connectionless QoS -1 publishers).
type Rule struct {
	Allow  bool
	Client string
	Action Action
	Filter string
}

// Validate reports a malformed rule.
func (a *Access) Validate() error {
	for i, r := range a.Rules {
		if err := topic.ValidateFilter(r.Filter); err != nil {
			return fmt.Errorf("access rule %d: %w", i+1, err)
		}
		if r.Action&ActionBoth == 0 {
			return fmt.Errorf("access rule %d: no action (publish, subscribe or both)", i+1)
		}
		if r.Client == "" {
			return fmt.Errorf("access rule %d: no client (an id, * or -)", i+1)
		}
	}
	return nil
}

func (a *Access) addrAllowed(addr netip.AddrPort) bool {
	if a == nil || len(a.Networks) == 0 {
		return true
	}
	ip := addr.Addr().Unmap()
	for _, n := range a.Networks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (a *Access) clientAllowed(id string) bool {
	return a == nil || len(a.ClientIDs) == 0 || a.ClientIDs[id]
}

// allowed decides action on name (a topic name, or for subscribe a filter, whose
// wildcards a rule must cover: rule "a/#" covers filter "a/+/b", rule "a/+" does not
// cover "#").
func (a *Access) allowed(client string, act Action, name string) bool {
	if a == nil || len(a.Rules) == 0 {
		return true
	}
	for _, r := range a.Rules {
		if r.Action&act == 0 || (r.Client != "*" && r.Client != client) {
			continue
		}
		if covers(r.Filter, name) {
			return r.Allow
		}
	}
	return false
}

// covers reports whether every topic matched by filter f2 is matched by rule filter f1.
// Treating f2's wildcard characters as literal levels gives exactly that for MQTT
// filters: '+' in f1 covers a literal '+' level, '#' covers any tail.
func covers(f1, f2 string) bool {
	if f1 == f2 {
		return true
	}
	return topic.Match(f1, f2)
}
