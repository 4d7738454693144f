/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-bench-crc32c: CRC32C throughput of the portable table path
 * and the hardware path (three lanes for large inputs) over buffers of
 * record-batch sizes, with a memcpy of the same bytes as the baseline.
 * Prints GB/s, the median of several runs.
 *
 *   tributary-bench-crc32c [-r RUNS] [-m MIB]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tributary/crc32c.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static volatile uint32_t sink;

/* mode 0: memcpy, 1: software CRC, 2: hardware/dispatch CRC. */
static double run(int mode, uint8_t *buf, uint8_t *dst, size_t size, size_t total)
{
    size_t reps = total / size;
    double t0 = now_s();
    uint32_t c = 0;
    for (size_t i = 0; i < reps; i++) {
        if (mode == 0) {
            memcpy(dst, buf, size);
            c ^= dst[i % size];
        } else if (mode == 1) {
            c ^= trib_crc32c_sw(0, buf, size);
        } else {
            c ^= trib_crc32c(0, buf, size);
        }
    }
    sink = c;
    double dt = now_s() - t0;
    return (double)(reps * size) / dt / 1e9;
}

int main(int argc, char **argv)
{
    int runs = 5;
    size_t mib = 512;
    int opt;
    while ((opt = getopt(argc, argv, "r:m:h")) != -1) {
        if (opt == 'r') {
            runs = atoi(optarg);
        } else if (opt == 'm') {
            mib = (size_t)atol(optarg);
        } else {
            fprintf(stderr, "usage: %s [-r RUNS] [-m MIB]\n", argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (runs < 1 || runs > 100 || mib < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    const size_t sizes[] = {1024, 16384, 1 << 20};
    uint8_t *buf = malloc(1 << 20), *dst = malloc(1 << 20);
    if (!buf || !dst) {
        return 1;
    }
    for (size_t i = 0; i < (1 << 20); i++) {
        buf[i] = (uint8_t)(i * 131 + 7);
    }
    printf("hardware crc32: %s; %d runs of %zu MiB, median GB/s\n",
           trib_crc32c_hw_available() ? "yes" : "no", runs, mib);
    printf("%-10s %10s %10s %10s\n", "size", "memcpy", "crc32c-sw", "crc32c");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        double med[3];
        for (int mode = 0; mode < 3; mode++) {
            double v[100];
            size_t total = mode == 1 ? mib * (1 << 20) / 8 : mib * (1 << 20);
            for (int r = 0; r < runs; r++) {
                v[r] = run(mode, buf, dst, sizes[s], total);
            }
            qsort(v, (size_t)runs, sizeof(double), cmp_double);
            med[mode] = v[runs / 2];
        }
        printf("%-10zu %10.2f %10.2f %10.2f\n", sizes[s], med[0], med[1], med[2]);
    }
    free(buf);
    free(dst);
    return 0;
}
