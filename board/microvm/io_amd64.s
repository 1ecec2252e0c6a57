//go:build tamago && amd64

#include "textflag.h"

// func inb(port uint16) uint8
TEXT ·inb(SB),NOSPLIT,$0-9
	MOVW	port+0(FP), DX
	INB
	MOVB	AX, ret+8(FP)
	RET

// func outb(port uint16, val uint8)
TEXT ·outb(SB),NOSPLIT,$0-3
	MOVW	port+0(FP), DX
	MOVB	val+2(FP), AX
	OUTB
	RET

// func outl(port uint16, val uint32)
TEXT ·outl(SB),NOSPLIT,$0-8
	MOVW	port+0(FP), DX
	MOVL	val+4(FP), AX
	OUTL
	RET

// func mmioRead32(addr uintptr) uint32
TEXT ·mmioRead32(SB),NOSPLIT,$0-12
	MOVQ	addr+0(FP), AX
	MOVL	(AX), BX
	MOVL	BX, ret+8(FP)
	RET

// func mmioWrite32(addr uintptr, val uint32)
TEXT ·mmioWrite32(SB),NOSPLIT,$0-12
	MOVQ	addr+0(FP), AX
	MOVL	val+8(FP), BX
	MOVL	BX, (AX)
	RET
