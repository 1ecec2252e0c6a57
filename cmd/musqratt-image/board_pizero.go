//go:build tamago && pizero

package main

import _ "github.com/musqratt/musqratt/board/pizero"
