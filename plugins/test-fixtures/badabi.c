/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test fixture: a plugin built for a future sink ABI (version 999, a
 * bigger descriptor). The host must refuse it without reading past the
 * version and size fields.
 */
#include <stdint.h>

#include "tributary/sink.h"

typedef struct future_descriptor {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *something_new;
} future_descriptor_t;

TRIB_SINK_EXPORT const void *tributary_sink_descriptor(void);

TRIB_SINK_EXPORT const void *tributary_sink_descriptor(void)
{
    static const future_descriptor_t d = {999, sizeof(future_descriptor_t), "badabi"};
    return &d;
}
