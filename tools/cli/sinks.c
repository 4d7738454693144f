/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary sinks replay: re-delivers a running sink's records from an
 * earlier point, without a restart.
 *
 * A sink of the collector is the consumer group sink.<name> with the sink
 * as its one member, so `groups reset-offsets` is refused while it runs
 * (the sink would commit over the new offsets). A replay goes to the sink
 * itself instead, through the collector's HTTP admin endpoint on its
 * metrics listener (collector/sinks/sinks.h):
 *
 *   POST /sinks/NAME/replay?to=earliest|offset=N|time=MS[&topic=T][&partition=P]
 *
 * The sink drops the batch it is delivering (none of it was committed),
 * commits the new offset as its member of the group and reads on from
 * there. The endpoint answers loopback peers only, so this runs on the
 * collector's host. The answer is a table of the partitions moved.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "tributary/config.h"

#define DEFAULT_ADMIN "127.0.0.1:9644"
#define MAX_ANSWER (1u << 20)

static void usage(FILE *out)
{
    fputs("Usage:\n"
          "  tributary sinks replay --sink NAME\n"
          "        (--to-earliest | --to-offset N | --to-time T)\n"
          "        [--topic T] [--partition P] [--admin HOST:PORT]\n"
          "\n"
          "replay: the running sink NAME of a collector delivers its records again from\n"
          "  the log start (--to-earliest), offset N, or the first record at or after\n"
          "  time T (milliseconds since the epoch, or UTC as 2026-12-07T08:00:00Z), on\n"
          "  every partition it processes or only those of --topic / --partition. Offsets\n"
          "  are clamped into each log's range. The collector keeps running; the sink's\n"
          "  group sink.NAME keeps its member.\n"
          "  The postgres and clickhouse sinks (and http's es_bulk) keep one row per\n"
          "  (topic, partition, offset), so replayed records add no duplicates; the file\n"
          "  sink and http's json_lines write them again (at-least-once).\n"
          "\n"
          "  --admin HOST:PORT  the collector's metrics/admin listener (its --metrics,\n"
          "                     default " DEFAULT_ADMIN ", or $TRIBUTARY_ADMIN); it\n"
          "                     accepts replays from 127.0.0.1 and ::1 only.\n",
          out);
}

/* "123" (ms) or "YYYY-MM-DDTHH:MM:SS[.mmm][Z]" (UTC). */
static int parse_time(const char *s, int64_t *out)
{
    if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
        return cli_parse_int("--to-time", s, 0, INT64_MAX, out);
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    int64_t ms = 0;
    if (rest && *rest == '.') {
        char *end;
        long frac = strtol(rest + 1, &end, 10);
        if (end - (rest + 1) != 3 || frac < 0) {
            rest = NULL;
        } else {
            ms = frac;
            rest = end;
        }
    }
    if (rest && *rest == 'Z') {
        rest++;
    }
    if (!rest || *rest) {
        cli_errorf("--to-time: expected milliseconds since the epoch or "
                   "YYYY-MM-DDTHH:MM:SS[.mmm]Z (UTC), got '%s'",
                   s);
        return -1;
    }
    *out = (int64_t)timegm(&tm) * 1000 + ms;
    return 0;
}

/* Appends s %-escaped for a query string or path segment. */
static void url_escape(char *out, size_t n, const char *s)
{
    size_t k = strlen(out);
    for (; *s && k + 4 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[k++] = (char)ch;
        } else {
            k += (size_t)snprintf(out + k, n - k, "%%%02X", ch);
        }
    }
    out[k] = '\0';
}

/* One HTTP/1.1 request, the whole answer read into *body (status in *status). */
static int http_post(const char *admin, const char *target, int timeout_ms, int *status,
                     char **body)
{
    char host[256], portstr[8];
    uint16_t port;
    const char *why;
    if (trib_config_parse_address(admin, host, sizeof(host), &port, &why) != 0 || !host[0] ||
        port == 0) {
        cli_errorf("--admin: expected HOST:PORT, got '%s'", admin);
        return CLI_EUSAGE;
    }
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0) {
        cli_errorf("the collector's admin address %s: %s", admin, gai_strerror(gai));
        return CLI_ENET;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        cli_errorf("cannot reach the collector's admin endpoint at %s: %s (is its metrics "
                   "listener there? see --admin)",
                   admin, strerror(err));
        return CLI_ENET;
    }
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     target, admin);
    if (n <= 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        cli_errorf("sending the request to %s: %s", admin, strerror(errno));
        close(fd);
        return CLI_ENET;
    }
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        if (len + 1 >= cap) {
            if (cap >= MAX_ANSWER) {
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            cli_errorf("reading the answer from %s: %s", admin, strerror(errno));
            free(buf);
            close(fd);
            return CLI_ENET;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !sep || sscanf(buf + 8, " %d", status) != 1) {
        cli_errorf("%s did not answer in HTTP", admin);
        free(buf);
        return CLI_ENET;
    }
    memmove(buf, sep + 4, strlen(sep + 4) + 1);
    *body = buf;
    return CLI_OK;
}

static int sinks_replay(int argc, char **argv)
{
    enum { O_SINK = 1, O_EARLIEST, O_OFFSET, O_TIME, O_TOPIC, O_PARTITION, O_ADMIN, O_TIMEOUT };
    static const struct option opts[] = {
        {"sink", required_argument, NULL, O_SINK},
        {"to-earliest", no_argument, NULL, O_EARLIEST},
        {"to-offset", required_argument, NULL, O_OFFSET},
        {"to-time", required_argument, NULL, O_TIME},
        {"topic", required_argument, NULL, O_TOPIC},
        {"partition", required_argument, NULL, O_PARTITION},
        {"admin", required_argument, NULL, O_ADMIN},
        {"request-timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sink = NULL, *topic = NULL, *admin = getenv("TRIBUTARY_ADMIN");
    const char *mode = NULL;
    int64_t value = 0, partition = -1, timeout = 30000;
    int nmodes = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return -1;
        case O_SINK:
            sink = optarg;
            break;
        case O_EARLIEST:
            mode = "to=earliest";
            nmodes++;
            break;
        case O_OFFSET:
            if (cli_parse_int("--to-offset", optarg, 0, INT64_MAX, &value) != 0) {
                return CLI_EUSAGE;
            }
            mode = "offset";
            nmodes++;
            break;
        case O_TIME:
            if (parse_time(optarg, &value) != 0) {
                return CLI_EUSAGE;
            }
            mode = "time";
            nmodes++;
            break;
        case O_TOPIC:
            topic = optarg;
            break;
        case O_PARTITION:
            if (cli_parse_int("--partition", optarg, 0, INT32_MAX, &partition) != 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_ADMIN:
            admin = optarg;
            break;
        case O_TIMEOUT:
            if (cli_parse_int("--request-timeout-ms", optarg, 1, 3600000, &timeout) != 0) {
                return CLI_EUSAGE;
            }
            break;
        default:
            usage(stderr);
            return CLI_EUSAGE;
        }
    }
    if (optind < argc) {
        cli_errorf("unexpected argument '%s'", argv[optind]);
        return CLI_EUSAGE;
    }
    if (!sink || !*sink || nmodes != 1) {
        cli_errorf("sinks replay needs --sink NAME and one of --to-earliest, --to-offset N, "
                   "--to-time T");
        return CLI_EUSAGE;
    }
    if (!admin || !*admin) {
        admin = DEFAULT_ADMIN;
    }
    char target[2048] = "/sinks/";
    url_escape(target, sizeof(target), sink);
    strncat(target, "/replay?", sizeof(target) - strlen(target) - 1);
    size_t k = strlen(target);
    if (strcmp(mode, "to=earliest") == 0) {
        snprintf(target + k, sizeof(target) - k, "to=earliest");
    } else {
        snprintf(target + k, sizeof(target) - k, "%s=%" PRId64, mode, value);
    }
    if (topic) {
        strncat(target, "&topic=", sizeof(target) - strlen(target) - 1);
        url_escape(target, sizeof(target), topic);
    }
    if (partition >= 0) {
        k = strlen(target);
        snprintf(target + k, sizeof(target) - k, "&partition=%" PRId64, partition);
    }
    int status = 0;
    char *body = NULL;
    int rc = http_post(admin, target, (int)timeout, &status, &body);
    if (rc != CLI_OK) {
        return rc;
    }
    if (status == 200) {
        fputs(body, stdout);
        printf("The sink delivers these partitions again from the new offsets.\n");
    } else {
        size_t n = strlen(body);
        while (n && body[n - 1] == '\n') {
            body[--n] = '\0';
        }
        cli_errorf("replay of sink '%s' refused (HTTP %d): %s", sink, status, body);
        rc = status == 400 ? CLI_EUSAGE : CLI_EKAFKA;
    }
    free(body);
    return rc;
}

int cli_sinks(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EUSAGE : CLI_OK;
    }
    if (strcmp(argv[1], "replay") != 0) {
        cli_errorf("unknown sinks command '%s'", argv[1]);
        usage(stderr);
        return CLI_EUSAGE;
    }
    int rc = sinks_replay(argc - 1, argv + 1);
    return rc < 0 ? CLI_OK : rc;
}
