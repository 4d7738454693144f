/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The replica fetchers (replica/replica.h).
 */
#include "replica/replica.h"

#include <errno.h>

int coll_fetchers_new(coll_server_t *s, coll_fetchers_t **out)
{
    (void)s;
    *out = NULL;
    return -ENOTSUP;
}

void coll_fetchers_close(coll_fetchers_t *f)
{
    (void)f;
}

void coll_fetchers_free(coll_fetchers_t *f)
{
    (void)f;
}

void coll_fetchers_follow(coll_fetchers_t *f, coll_prt_t *prt)
{
    (void)f;
    (void)prt;
}

void coll_fetchers_unfollow(coll_fetchers_t *f, coll_prt_t *prt)
{
    (void)f;
    (void)prt;
}
