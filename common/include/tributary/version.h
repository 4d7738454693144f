/* SPDX-License-Identifier: Apache-2.0 */
/* Version strings of Tributary and of the libraries it was built with. */
#ifndef TRIBUTARY_VERSION_H
#define TRIBUTARY_VERSION_H

#include <stdio.h>

const char *trib_version(void);

/* Prints "<program> <version>" and one line per linked library. */
void trib_version_print(FILE *out, const char *program);

#endif
