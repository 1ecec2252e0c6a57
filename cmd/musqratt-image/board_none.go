//go:build tamago && !mx6ullevk && !usbarmory && !microvm && !pizero && !pi2

package main

// An image needs exactly one board: build with -tags mx6ullevk, usbarmory,
// microvm, pizero or pi2.
var _ = buildWithABoardTag_mx6ullevk_usbarmory_microvm_pizero_pi2
