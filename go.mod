module github.com/musqratt/musqratt

go 1.26.0

tool github.com/usbarmory/tamago/cmd/tamago

require golang.org/x/sys v0.36.0

require (
	github.com/eclipse/paho.mqtt.golang v1.5.1 // indirect
	github.com/google/btree v1.1.2 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/usbarmory/tamago v1.26.0 // indirect
	golang.org/x/exp v0.0.0-20231110203233-9a3e6036ecaa // indirect
	golang.org/x/net v0.44.0 // indirect
	golang.org/x/sync v0.17.0 // indirect
	golang.org/x/time v0.12.0 // indirect
	gvisor.dev/gvisor v0.0.0-20260413194555-9680d69bf798 // indirect
)
