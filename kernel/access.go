package kernel

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/topic"
)

// The security keys: max_amplification and access control (docs/security.md).

func setAmplification(p *parser, args []string, _ string) error {
	if args[0] == "off" {
		p.cfg.Broker.MaxAmplification = -1
		return nil
	}
	v, err := strconv.Atoi(args[0])
	if err != nil || v < 1 || v > 1000 {
		return p.errorf("max_amplification %q: want a factor from 1 to 1000, or off", args[0])
	}
	p.cfg.Broker.MaxAmplification = v
	return nil
}

func (p *parser) access() *broker.Access {
	if p.cfg.Broker.Access == nil {
		p.cfg.Broker.Access = &broker.Access{}
	}
	return p.cfg.Broker.Access
}

func setAllowNetwork(p *parser, args []string, _ string) error {
	pfx, err := netip.ParsePrefix(args[0])
	if err != nil {
		a, aerr := netip.ParseAddr(args[0])
		if aerr != nil {
			return p.errorf("allow_network %q: want an address range, e.g. 10.0.0.0/8, 192.168.1.0/24 or fd00::/8", args[0])
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	if pfx.Addr().Is4In6() {
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
	}
	acc := p.access()
	acc.Networks = append(acc.Networks, pfx.Masked())
	return nil
}

func setAllowClient(p *parser, args []string, _ string) error {
	acc := p.access()
	if acc.ClientIDs == nil {
		acc.ClientIDs = make(map[string]bool)
	}
	acc.ClientIDs[args[0]] = true
	return nil
}

// setRule reads "allow|deny CLIENT ACTION FILTER"; the filter is the rest of the line.
func setRule(p *parser, args []string, rest string) error {
	name := p.keyName()
	r := broker.Rule{Allow: name == "allow", Client: args[0]}
	switch args[1] {
	case "publish":
		r.Action = broker.ActionPublish
	case "subscribe":
		r.Action = broker.ActionSubscribe
	case "both":
		r.Action = broker.ActionBoth
	default:
		return p.errorf("%s %s %q: want publish, subscribe or both, then a topic filter, e.g. %q", name, args[0], args[1], lookupKey(name).example)
	}
	rest = strings.TrimSpace(rest[len(args[0]):])
	r.Filter = strings.TrimSpace(rest[len(args[1]):])
	if err := topic.ValidateFilter(r.Filter); err != nil {
		return p.errorf("%s %s %s %q: %v", name, args[0], args[1], r.Filter, err)
	}
	acc := p.access()
	acc.Rules = append(acc.Rules, r)
	return nil
}
