/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SCRAM credential store: <data_dir>/scram-credentials, the users the
 * SASL listeners accept (SCRAM-SHA-256, SCRAM-SHA-512, and PLAIN, which
 * is checked against the same credentials: no password is stored).
 *
 * The file is text, written whole and atomically (tmp file, fdatasync,
 * rename, directory fsync) with mode 0600; lines starting with '#' and
 * blank lines are ignored:
 *
 *   # tributary SCRAM credentials (format 1)
 *   USER MECHANISM ITERATIONS SALT STORED_KEY SERVER_KEY
 *   alice SCRAM-SHA-256 4096 W22ZaJ0SNY7soEsUEjb6gQ== WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=
 * wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=
 *
 * USER is percent-encoded: '%', and every byte outside '!'..'~', are
 * written %XX. MECHANISM is SCRAM-SHA-256 or SCRAM-SHA-512. ITERATIONS is
 * 4096..16384. SALT, STORED_KEY and SERVER_KEY are base64 (the keys 32
 * bytes for SHA-256, 64 for SHA-512). One line per user and mechanism.
 *
 * The file is changed by AlterUserScramCredentials (the collector keeps
 * its copy in memory and rewrites the file before it answers) and, before
 * a start, by `tributary-collector --add-user`.
 */
#ifndef COLLECTOR_SERVER_CREDENTIALS_H
#define COLLECTOR_SERVER_CREDENTIALS_H

#include <stddef.h>

#include "tributary/error.h"
#include "tributary/scram.h"

#define COLL_CREDS_FILE "scram-credentials"

typedef struct coll_creds coll_creds_t;

/* An empty store whose file is <data_dir>/scram-credentials. NULL: out of memory. */
coll_creds_t *coll_creds_new(const char *data_dir);
void coll_creds_free(coll_creds_t *c);
/* Loads the file (a missing file is an empty store). 0, or an error naming file and line. */
int coll_creds_load(coll_creds_t *c, trib_error_t *err);
/* Parses a file's text into c (replacing its entries); `file` names it in errors. */
int coll_creds_parse(coll_creds_t *c, const char *text, size_t n, const char *file,
                     trib_error_t *err);
/* Writes the whole store atomically. 0 or -errno. */
int coll_creds_save(const coll_creds_t *c);
/* A copy (for a change that must be saved before it is applied). NULL: out of memory. */
coll_creds_t *coll_creds_clone(const coll_creds_t *c);

/* The credential of user for mech, or NULL. */
const trib_scram_cred_t *coll_creds_find(const coll_creds_t *c, const char *user, int mech);
/* Adds or replaces user's credential for cred->mech. 0, -ENOMEM or -EINVAL (bad name). */
int coll_creds_set(coll_creds_t *c, const char *user, const trib_scram_cred_t *cred);
/* Removes user's credential for mech. 0 or TRIB_ENOT_FOUND. */
int coll_creds_delete(coll_creds_t *c, const char *user, int mech);
/* Entries, in file order: count and the i-th (user and credential). */
size_t coll_creds_count(const coll_creds_t *c);
void coll_creds_get(const coll_creds_t *c, size_t i, const char **user,
                    const trib_scram_cred_t **cred);

#endif
