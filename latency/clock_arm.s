#include "textflag.h"

// The ARMv7 generic timer, through CP15. The Go assembler has MRC but not MRRC,
// hence the 64-bit read as an encoded WORD.

// func cntvct() uint64
TEXT ·cntvct(SB), NOSPLIT, $0-8
	WORD	$0xf57ff06f // isb sy: do not sample the counter ahead of earlier instructions
	WORD	$0xec510f1e // mrrc p15, 1, r0, r1, c14: CNTVCT (virtual count), low word r0
	MOVW	R0, ret_lo+0(FP)
	MOVW	R1, ret_hi+4(FP)
	RET

// func cntfrq() uint32
TEXT ·cntfrq(SB), NOSPLIT, $0-4
	MRC	15, 0, R0, C14, C0, 0 // CNTFRQ
	MOVW	R0, ret+0(FP)
	RET
