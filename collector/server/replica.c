/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leader side of replication (replica/replica.h).
 */
#include "server/server_int.h"

void coll_replica_become_leader(coll_prt_t *prt)
{
    (void)prt;
}

void coll_replica_become_follower(coll_prt_t *prt)
{
    (void)prt;
}

void coll_replica_isr_changed(coll_prt_t *prt)
{
    (void)prt;
}
