/* SPDX-License-Identifier: Apache-2.0 */
/* Version reporting for --version: ours and the runtime libraries'. */
#include "tributary/version.h"

#include <lz4.h>
#include <uv.h>
#include <yaml.h>
#include <zlib.h>
#include <zstd.h>

#ifndef TRIB_VERSION
#define TRIB_VERSION "0.0.0"
#endif

const char *trib_version(void)
{
    return TRIB_VERSION;
}

void trib_version_print(FILE *out, const char *program)
{
    fprintf(out, "%s %s\n", program, TRIB_VERSION);
    fprintf(out, "  libuv %s\n", uv_version_string());
    fprintf(out, "  libyaml %s\n", yaml_get_version_string());
    fprintf(out, "  zlib %s\n", zlibVersion());
    fprintf(out, "  lz4 %s\n", LZ4_versionString());
    fprintf(out, "  zstd %s\n", ZSTD_versionString());
}
