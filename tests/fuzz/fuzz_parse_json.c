/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: one line through the json parse step (fuzz_parse.h says what
 * is checked, and how fuzz_parse_three() runs it three times).
 *
 * Sets fuzz_input_valid when the last run parsed the line.
 */
#include "fuzz_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parse_three(AGENT_PARSE_JSON, data, size);
    return 0;
}
