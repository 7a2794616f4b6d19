/*-------------------------------------------------------------------------
 *
 * support.h
 *		What the fuzzing harnesses use of their support file.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_FUZZ_SUPPORT_H
#define DOLON_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Free everything palloc'd since the last call */
extern void fuzz_reset_memory(void);

/* A copy of a fuzzer's input as a string, ending at its first NUL if any */
extern char *fuzz_input_string(const uint8_t *data, size_t size);

/* Stop the run with a finding: what the harness saw that is wrong */
extern _Noreturn void fuzz_finding(const char *what);

/* The entry point libFuzzer calls */
extern int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif							/* DOLON_FUZZ_SUPPORT_H */
