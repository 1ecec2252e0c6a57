// Package board names what a board gives the rest of MusQraTT: a network
// interface that moves Ethernet frames ([NIC]), a cycle counter ([Counter]),
// the network defaults it boots with ([Net]) and a way to stop the machine.
//
// The package is plain Go and builds everywhere; the boards themselves live
// in build-tagged subpackages (board/mx6ullevk, board/usbarmory, board/microvm,
// board/pizero, board/pi2) that wire one machine's TamaGo drivers to these
// interfaces and [Register] it from their init function. An image main
// blank-imports exactly one of them and asks for [Current].
//
// This package owns no driver, no network stack and no broker: frames leave
// a board as bytes, and net/netstack turns them into a stack.
package board
