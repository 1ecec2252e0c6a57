//go:build tamago && mx6ullevk

package main

import _ "github.com/musqratt/musqratt/board/mx6ullevk"
