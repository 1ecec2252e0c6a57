package kernel_test

import (
	"fmt"
	"strings"

	"github.com/musqratt/musqratt/kernel"
)

func ExampleParseConfig() {
	cfg, err := kernel.ParseConfig("musqratt.conf", strings.NewReader(`
listen [::]:1883
gateway_id 7
topic 1 sensors/temperature   # pre-defined: no REGISTER needed
retry_interval 5s
`))
	fmt.Println(cfg.Listen, cfg.Broker.GatewayID, cfg.Broker.Predefined[1], cfg.Broker.RetryInterval, err)

	_, err = kernel.ParseConfig("musqratt.conf", strings.NewReader("max_client 10\n"))
	fmt.Println(err)
	// Output:
	// [[::]:1883] 7 sensors/temperature 5s <nil>
	// musqratt.conf:1: unknown key "max_client"; did you mean "max_clients"?
}
