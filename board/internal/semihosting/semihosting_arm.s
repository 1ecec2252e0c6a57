//go:build tamago && arm

#include "textflag.h"

// func call(op uint32, arg *[2]uint32)
TEXT ·call(SB),NOSPLIT,$0-8
	MOVW	op+0(FP), R0
	MOVW	arg+4(FP), R1
	WORD	$0xef123456	// svc 0x123456
	RET
