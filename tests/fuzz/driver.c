/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay driver for the fuzz targets when they are not linked with
 * libFuzzer: runs LLVMFuzzerTestOneInput over every file named on the
 * command line (directories are walked one level deep). ctest uses it to
 * run the committed corpora as a smoke test, normally and under ASan.
 *
 *   fuzz_x [--valid] FILE|DIR…
 *
 * With --valid every input must also be accepted (the target sets
 * fuzz_input_valid):
 * the seeds are meant to reach deep into the parsers, not stop at the
 * first check.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern int fuzz_input_valid;

static int require_valid;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0) {
            break;
        }
        len += n;
    }
    fclose(f);
    fuzz_input_valid = 0;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    if (!fuzz_input_valid && require_valid) {
        fprintf(stderr, "%s: rejected by the target\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--valid") == 0) {
        require_valid = 1;
        first = 2;
    }
    for (int i = first; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0) {
                return 1;
            }
            files++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, alphasort);
        if (n < 0) {
            perror(argv[i]);
            return 1;
        }
        for (int k = 0; k < n; k++) {
            char path[4096];
            if (names[k]->d_name[0] != '.') {
                snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                    if (run_file(path) != 0) {
                        return 1;
                    }
                    files++;
                }
            }
            free(names[k]);
        }
        free(names);
    }
    printf("%d inputs replayed without a crash\n", files);
    return files > 0 ? 0 : 1;
}
