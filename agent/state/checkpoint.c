/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checkpoints: for each (input id, device, inode) the offset up to which
 * every line was delivered, with the fingerprint (length and CRC32C of the
 * file's first bytes) that tells a rotated or reused inode apart.
 *
 * The file, state_dir/checkpoints, is text, one entry per line:
 *
 *   # tributary-agent checkpoints v1
 *   <input id> TAB <dev> TAB <ino> TAB <fp_len> TAB <fp_crc> TAB <offset>
 *       TAB <closed_ms> TAB <path, with %, TAB and LF percent-encoded>
 *
 * It is replaced atomically: written to checkpoints.tmp, fsynced, renamed
 * over checkpoints, and the directory fsynced, so a crash leaves either
 * the old or the new table, never a torn one. Entries of every input stay
 * (other inputs' entries are never dropped because a pipeline was removed);
 * an entry whose file was closed expires after agent.state_ttl.
 */
#include "state/checkpoint.h"

#include <stdio.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tributary/fileio.h"

agent_ckpt_t *agent_ckpt_find(agent_ckpt_table_t *t, const char *input_id, uint64_t dev,
                              uint64_t ino)
{
    for (agent_ckpt_t *c = t->head; c != NULL; c = c->next) {
        if (c->ino == ino && c->dev == dev && strcmp(c->input_id, input_id) == 0) {
            return c;
        }
    }
    return NULL;
}

agent_ckpt_t *agent_ckpt_add(agent_ckpt_table_t *t, const char *input_id, const char *path,
                             uint64_t dev, uint64_t ino)
{
    agent_ckpt_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->input_id = strdup(input_id);
    c->path = strdup(path);
    if (c->input_id == NULL || c->path == NULL) {
        free(c->input_id);
        free(c->path);
        free(c);
        return NULL;
    }
    c->dev = dev;
    c->ino = ino;
    c->next = t->head;
    t->head = c;
    t->count++;
    t->dirty = true;
    return c;
}

void agent_ckpt_remove(agent_ckpt_table_t *t, agent_ckpt_t *ck)
{
    for (agent_ckpt_t **pp = &t->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == ck) {
            *pp = ck->next;
            t->count--;
            t->dirty = true;
            free(ck->input_id);
            free(ck->path);
            free(ck);
            return;
        }
    }
}

void agent_ckpt_clear(agent_ckpt_table_t *t)
{
    while (t->head != NULL) {
        agent_ckpt_remove(t, t->head);
    }
    t->dirty = false;
}

void agent_ckpt_expire(agent_ckpt_table_t *t, int64_t now_ms, int64_t ttl_ms)
{
    agent_ckpt_t *c = t->head;
    while (c != NULL) {
        agent_ckpt_t *next = c->next;
        if (c->file == NULL && c->closed_ms != 0 && now_ms - c->closed_ms > ttl_ms) {
            agent_ckpt_remove(t, c);
        }
        c = next;
    }
}

static void put_path(FILE *fp, const char *p)
{
    for (; *p; p++) {
        if (*p == '%' || *p == '\t' || *p == '\n' || *p == '\r') {
            fprintf(fp, "%%%02X", (unsigned char)*p);
        } else {
            fputc(*p, fp);
        }
    }
}

static void decode_path(char *p)
{
    char *o = p;
    for (; *p; p++) {
        unsigned v;
        if (*p == '%' && sscanf(p + 1, "%2X", &v) == 1) {
            *o++ = (char)v;
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

int agent_ckpt_save(const agent_ckpt_table_t *t, const char *dir)
{
    char final[4096];
    snprintf(final, sizeof(final), "%s/checkpoints", dir);
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (fp == NULL) {
        return -errno;
    }
    fputs("# tributary-agent checkpoints v1\n", fp);
    for (const agent_ckpt_t *c = t->head; c != NULL; c = c->next) {
        uint64_t off = c->offset;
        fprintf(fp,
                "%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu32 "\t%" PRIu32 "\t%" PRIu64 "\t%" PRId64
                "\t",
                c->input_id, c->dev, c->ino, c->fp_len, c->fp_crc, off, c->closed_ms);
        put_path(fp, c->path);
        fputc('\n', fp);
    }
    return trib_write_memstream_atomic(final, fp, &text, &len, 0644, 0);
}

int agent_ckpt_load(agent_ckpt_table_t *t, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/checkpoints", dir);
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return errno == ENOENT ? 0 : -errno;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, fp)) > 0) {
        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (line[n - 1] == '\n') {
            line[n - 1] = '\0';
        }
        char *f[8];
        int k = 0;
        char *s = line;
        for (; k < 8; k++) {
            f[k] = s;
            char *tab = k < 7 ? strchr(s, '\t') : NULL;
            if (k < 7 && tab == NULL) {
                break;
            }
            if (tab != NULL) {
                *tab = '\0';
                s = tab + 1;
            }
        }
        if (k < 8) {
            continue; /* a malformed line: skipped, not fatal */
        }
        decode_path(f[7]);
        agent_ckpt_t *c =
            agent_ckpt_add(t, f[0], f[7], strtoull(f[1], NULL, 10), strtoull(f[2], NULL, 10));
        if (c == NULL) {
            rc = -ENOMEM;
            break;
        }
        c->fp_len = (uint32_t)strtoul(f[3], NULL, 10);
        c->fp_crc = (uint32_t)strtoul(f[4], NULL, 10);
        c->offset = strtoull(f[5], NULL, 10);
        c->closed_ms = strtoll(f[6], NULL, 10);
        if (c->closed_ms == 0) {
            /* held by a file when the agent stopped: its clock starts now */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            c->closed_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        }
    }
    free(line);
    fclose(fp);
    t->dirty = false;
    return rc;
}
