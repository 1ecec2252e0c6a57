// Package qemu boots MusQraTT images under QEMU from the host: it builds an
// image with the TamaGo toolchain ([Build]), starts QEMU with the guest's
// UDP port forwarded to a free host port ([Boot]), waits for the image's
// ready line on the serial console, and shuts QEMU down without leaving a
// process behind ([Instance.Close]).
//
// It is host-side tooling on the standard library only; it knows the
// machines (their QEMU command lines, their link addresses) but nothing of
// the broker. Tests that need QEMU or the TamaGo toolchain call [Available]
// and [Toolchain] and skip, saying why, when either is missing.
package qemu
