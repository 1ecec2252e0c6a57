//go:build tamago && usbarmory

package main

import _ "github.com/musqratt/musqratt/board/usbarmory"
