//go:build tamago && pi2

package main

import _ "github.com/musqratt/musqratt/board/pi2"
