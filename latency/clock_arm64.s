#include "textflag.h"

// The ARMv8 generic timer, through its EL0 system registers.

// func cntvct() uint64
TEXT ·cntvct(SB), NOSPLIT, $0-8
	ISB	$15 // do not sample the counter ahead of earlier instructions
	MRS	CNTVCT_EL0, R0
	MOVD	R0, ret+0(FP)
	RET

// func cntfrq() uint32
TEXT ·cntfrq(SB), NOSPLIT, $0-4
	MRS	CNTFRQ_EL0, R0
	MOVW	R0, ret+0(FP)
	RET
