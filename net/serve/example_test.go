package serve_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/net/serve"
)

// A broker served over one UDP socket, with its events logged and ADVERTISE
// broadcast to the local IPv4 subnet.
func Example() {
	logger := slog.Default()
	b, err := broker.New(broker.Config{OnEvent: serve.NewEventLog(logger, 0).Event})
	if err != nil {
		panic(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: 1883})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	srv := serve.New(b, serve.Options{
		Broadcast: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.255:1883")},
		Logger:    logger,
	}, conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Run(ctx); err != nil { // until cancel()
		logger.Error("serve", "err", err)
	}
}
