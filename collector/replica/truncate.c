/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The follower's truncation decision (truncate.h).
 */
#include "replica/truncate.h"

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

coll_trunc_action_t coll_trunc_decide(int32_t answer_epoch, int64_t answer_end, int32_t local_epoch,
                                      int64_t local_end, int64_t leo, int64_t *offset)
{
    *offset = leo;
    if (answer_end < 0) {
        return COLL_TRUNC_RETRY;
    }
    if (answer_epoch < 0 || local_epoch < 0 || local_end < 0) {
        *offset = min64(answer_end, leo);
        return COLL_TRUNC_DONE;
    }
    if (local_epoch != answer_epoch) {
        *offset = min64(local_end, leo);
        return COLL_TRUNC_AGAIN;
    }
    *offset = min64(min64(answer_end, local_end), leo);
    return COLL_TRUNC_DONE;
}

coll_trunc_action_t coll_trunc_decide_log(const coll_log_t *log, int32_t answer_epoch,
                                          int64_t answer_end, int64_t *offset)
{
    int32_t fe = -1;
    int64_t fend = -1;
    if (answer_epoch >= 0) {
        coll_log_end_offset_for_epoch(log, answer_epoch, &fe, &fend);
    }
    return coll_trunc_decide(answer_epoch, answer_end, fe, fend, coll_log_end_offset(log), offset);
}

int coll_trunc_apply(coll_log_t *log, int64_t offset)
{
    if (offset >= coll_log_end_offset(log)) {
        return 0;
    }
    int rc = offset < coll_log_start_offset(log) ? coll_log_truncate_fully(log, offset)
                                                 : coll_log_truncate_to(log, offset);
    return rc < 0 ? rc : 1;
}
