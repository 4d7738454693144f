/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the server side of a SCRAM-SHA-256 exchange (common/scram.c)
 * as a SASL listener runs it. The input is a client-first message, a NUL,
 * and a client-final message; the server answers the first with RFC 7677's
 * credential (user "user", password "pencil") and nonce, then checks the
 * second. Also decodes the input as base64, and gives the same two parts
 * to the client's side: the first as a server-first message (for RFC
 * 7677's client nonce), the second as a server-final message.
 *
 * Sets fuzz_input_valid when a login succeeds on either side (the seeds
 * are RFC 7677's exchange, the server's and the client's halves).
 */
#include <stdint.h>
#include <string.h>

#include "tributary/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_input_valid;

static trib_scram_cred_t cred;
static int cred_ready;

static void fuzz_client(const uint8_t *sfirst, size_t n1, const uint8_t *sfinal, size_t n2)
{
    trib_scram_client_t c;
    char out[TRIB_SCRAM_MSG_MAX + 1];
    const char *why = NULL;
    if (trib_scram_client_first(&c, TRIB_SCRAM_SHA_256, "user", "rOprNGfwEbeRWgbNEkqO", out,
                                sizeof(out)) > 0 &&
        trib_scram_client_final(&c, "pencil", 6, sfirst, n1, out, sizeof(out), &why) > 0 &&
        sfinal) {
        if (trib_scram_client_verify(&c, sfinal, n2, &why) == 0) {
            fuzz_input_valid = 1;
        }
    }
    trib_scram_client_fini(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cred_ready) {
        uint8_t salt[16];
        size_t sl = 0;
        if (trib_base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt), &sl) != 0 ||
            trib_scram_cred_from_password(&cred, TRIB_SCRAM_SHA_256, "pencil", 6, salt, sl, 4096) !=
                0) {
            return 0;
        }
        cred_ready = 1;
    }
    uint8_t b64[3 * 1024];
    size_t n = 0;
    (void)trib_base64_decode((const char *)data, size < 4096 ? size : 4096, b64, sizeof(b64), &n);

    const uint8_t *nul = memchr(data, 0, size);
    size_t first = nul ? (size_t)(nul - data) : size;
    fuzz_client(data, first, nul ? nul + 1 : NULL, nul ? size - first - 1 : 0);
    trib_scram_server_t s;
    trib_scram_server_init(&s, TRIB_SCRAM_SHA_256);
    const char *why = NULL;
    if (trib_scram_server_client_first(&s, data, first, &why) != 0) {
        return 0;
    }
    char out[TRIB_SCRAM_MSG_MAX + 1];
    if (trib_scram_server_first(&s, &cred, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", out, sizeof(out)) <
        0) {
        return 0;
    }
    if (!nul) {
        return 0;
    }
    if (trib_scram_server_client_final(&s, &cred, nul + 1, size - first - 1, out, sizeof(out),
                                       &why) > 0) {
        fuzz_input_valid = 1;
    }
    return 0;
}
