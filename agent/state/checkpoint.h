/* SPDX-License-Identifier: Apache-2.0 */
/* The checkpoint table: per input and file (dev, inode, fingerprint) the
   offset up to which every line was delivered, kept in state_dir. */
#ifndef TRIBUTARY_AGENT_CHECKPOINT_H
#define TRIBUTARY_AGENT_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent_file;

typedef struct agent_ckpt {
    struct agent_ckpt *next;
    char *input_id;
    char *path;
    uint64_t dev;
    uint64_t ino;
    uint32_t fp_len;
    uint32_t fp_crc;
    uint64_t offset;
    int64_t closed_ms; /* 0 while a file object holds it */
    struct agent_file *file;
} agent_ckpt_t;

typedef struct agent_ckpt_table {
    agent_ckpt_t *head;
    size_t count;
    bool dirty;
} agent_ckpt_table_t;

agent_ckpt_t *agent_ckpt_find(agent_ckpt_table_t *t, const char *input_id, uint64_t dev,
                              uint64_t ino);
agent_ckpt_t *agent_ckpt_add(agent_ckpt_table_t *t, const char *input_id, const char *path,
                             uint64_t dev, uint64_t ino);
void agent_ckpt_remove(agent_ckpt_table_t *t, agent_ckpt_t *ck);
void agent_ckpt_clear(agent_ckpt_table_t *t);
/* Reads state_dir/checkpoints (missing is fine). 0 or -errno. */
int agent_ckpt_load(agent_ckpt_table_t *t, const char *dir);
/* Atomic write: checkpoints.tmp, fsync, rename, fsync dir. 0 or -errno. */
int agent_ckpt_save(const agent_ckpt_table_t *t, const char *dir);
/* Drops closed entries older than ttl. */
void agent_ckpt_expire(agent_ckpt_table_t *t, int64_t now_ms, int64_t ttl_ms);

#endif
