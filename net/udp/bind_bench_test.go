package udp

import (
	"strconv"
	"testing"
	"time"

	"github.com/musqratt/musqratt/net/serve"
)

// BenchmarkBindRoundTrip echoes batches of 64-octet datagrams between two Binds on
// loopback, in one goroutine: the client sends a batch, the server receives it and
// sends it back, the client receives it. datagrams/s counts echoed datagrams, so
// batch=1 against batch=32 is what batching saves in system calls.
func BenchmarkBindRoundTrip(b *testing.B) {
	for _, k := range []int{1, 32} {
		b.Run("batch="+strconv.Itoa(k), func(b *testing.B) {
			srv, sc := listenBind(b, "127.0.0.1:0", Options{ReceiveBuffer: 1 << 20}, k)
			cli, _ := listenBind(b, "127.0.0.1:0", Options{ReceiveBuffer: 1 << 20}, k)
			k := min(k, srv.BatchSize()) // 1 where the platform has no batches
			out := make([]serve.Packet, k)
			for i := range out {
				out[i] = serve.Packet{Buf: make([]byte, 64), Addr: portOn(sc, "127.0.0.1")}
			}
			in, echo := packets(k, 2048), make([]serve.Packet, k)
			// A lost datagram would hang the benchmark: fail it instead.
			srv.SetReadDeadline(time.Now().Add(time.Minute))
			cli.SetReadDeadline(time.Now().Add(time.Minute))
			recv := func(bd *Bind, pkts []serve.Packet) {
				for got := 0; got < k; {
					n, err := bd.ReceiveBatch(pkts[got:])
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if n, err := cli.SendBatch(out); n != k || err != nil {
					b.Fatal(n, err)
				}
				recv(srv, in)
				for i := range echo {
					echo[i] = serve.Packet{Buf: in[i].Buf[:in[i].N], Addr: in[i].Addr}
				}
				if n, err := srv.SendBatch(echo); n != k || err != nil {
					b.Fatal(n, err)
				}
				recv(cli, in)
			}
			b.ReportMetric(float64(b.N*k)/b.Elapsed().Seconds(), "datagrams/s")
		})
	}
}
