/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small blocking Kafka client on the generated codec (see kclient.h).
 *
 * Design: one non-blocking socket per broker, driven with poll() against a
 * deadline so that no call can hang longer than the request timeout. A
 * call writes one frame and reads one frame: there is never more than one
 * request in flight on a connection, so a correlation id that does not
 * match is a protocol error, not a reordering to handle. The bootstrap
 * connection is kept and adopted as the connection of the broker whose
 * advertised address it reached (or of the only broker).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tributary/config.h"
#include "tributary/kafka_error.h"
#include "tributary/kclient.h"

#include "kafka/gen/ApiVersionsRequest.h"
#include "kafka/gen/ApiVersionsResponse.h"
#include "kafka/gen/MetadataRequest.h"
#include "kafka/gen/MetadataResponse.h"

#define API_METADATA 3
#define API_API_VERSIONS 18

#define DEFAULT_BOOTSTRAP "127.0.0.1:9092"
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE ((size_t)256 << 20)

typedef struct kconn {
    int32_t node; /* -1 until known (the bootstrap connection) */
    char host[256];
    int port;
    int fd; /* -1 when closed */
} kconn_t;

struct trib_kclient {
    char *client_id;
    char *software_name;
    char *software_ver;
    int timeout_ms;
    size_t max_response;
    int32_t correlation;

    trib_kclient_api_range_t *ranges;
    size_t nranges;

    trib_kclient_broker_t *brokers;
    size_t nbrokers;
    int32_t controller;
    char cluster_id[128];

    kconn_t *conns; /* conns[0] is the bootstrap connection */
    size_t nconns;

    trib_buf_t out;
};

/* ---- time and sockets ----------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            return -ETIMEDOUT;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0) {
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
}

static int connect_addr(const char *host, int port, int64_t deadline, int *fd_out)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        return -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            *fd_out = fd;
            freeaddrinfo(res);
            return 0;
        }
        if (errno != EINPROGRESS) {
            rc = -errno;
            close(fd);
            continue;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc == 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            if (soerr == 0) {
                *fd_out = fd;
                freeaddrinfo(res);
                return 0;
            }
            rc = -soerr;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

static int write_all(int fd, struct iovec *iov, int cnt, int64_t deadline)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                return -errno;
            }
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static int read_full(int fd, void *p, size_t len, int64_t deadline)
{
    uint8_t *dst = p;
    while (len > 0) {
        ssize_t n = read(fd, dst, len);
        if (n > 0) {
            dst += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) {
            return -ECONNRESET;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return -errno;
        }
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static void conn_close(kconn_t *k)
{
    if (k->fd >= 0) {
        close(k->fd);
        k->fd = -1;
    }
}

/* ---- helpers ------------------------------------------------------------- */

int32_t trib_kafka_murmur2(const void *data, size_t len)
{
    const uint8_t *d = data;
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t len4 = len / 4;
    for (size_t i = 0; i < len4; i++) {
        size_t i4 = i * 4;
        uint32_t k = (uint32_t)d[i4] | ((uint32_t)d[i4 + 1] << 8) | ((uint32_t)d[i4 + 2] << 16) |
                     ((uint32_t)d[i4 + 3] << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    size_t tail = len & ~(size_t)3;
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)d[tail + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)d[tail + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)d[tail];
        h *= m;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

int32_t trib_kafka_partition_for_key(const void *key, size_t len, int32_t partitions)
{
    if (partitions <= 0) {
        return -1;
    }
    uint32_t h = (uint32_t)trib_kafka_murmur2(key, len) & 0x7fffffffu;
    return (int32_t)(h % (uint32_t)partitions);
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void kstr_copy(char *dst, size_t cap, trib_kstr_t s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    if (n >= cap) {
        n = cap - 1;
    }
    if (n) {
        memcpy(dst, s.ptr, n);
    }
    dst[n] = '\0';
}

/* ---- framing ------------------------------------------------------------- */

int trib_kclient_frame(trib_buf_t *out, int16_t api_key, int16_t version, int32_t correlation_id,
                       const char *client_id, const void *req)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    if (!api) {
        return TRIB_EUNSUPPORTED;
    }
    int16_t hv = trib_kafka_request_header_version(api_key, version);
    if (hv < 0 || version < api->min_version || version > api->max_version) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    size_t pos = trib_buf_reserve(out, 4);
    trib_kafka_request_header_t h;
    trib_kafka_request_header_init(&h);
    h.api_key = api_key;
    h.api_version = version;
    h.correlation_id = correlation_id;
    h.client_id = trib_kstr(client_id);
    int rc = trib_kafka_request_header_encode(&h, out, hv);
    if (rc == 0) {
        rc = api->request->encode(req, out, version);
    }
    if (rc == 0) {
        rc = trib_buf_error(out);
    }
    if (rc == 0) {
        size_t size = trib_buf_len(out) - pos - 4;
        if (size > INT32_MAX) {
            return TRIB_ETOO_LARGE;
        }
        trib_buf_patch_i32(out, pos, (int32_t)size);
    }
    return rc;
}

/* ---- connections ---------------------------------------------------------- */

static kconn_t *conn_add(trib_kclient_t *c, int32_t node, const char *host, int port)
{
    kconn_t *n = realloc(c->conns, (c->nconns + 1) * sizeof *n);
    if (!n) {
        return NULL;
    }
    c->conns = n;
    kconn_t *k = &c->conns[c->nconns++];
    k->node = node;
    snprintf(k->host, sizeof k->host, "%s", host);
    k->port = port;
    k->fd = -1;
    return k;
}

static const trib_kclient_broker_t *broker_find(const trib_kclient_t *c, int32_t node)
{
    for (size_t i = 0; i < c->nbrokers; i++) {
        if (c->brokers[i].node_id == node) {
            return &c->brokers[i];
        }
    }
    return NULL;
}

static int conn_for(trib_kclient_t *c, int32_t node, kconn_t **out, trib_error_t *err)
{
    if (node == TRIB_KCLIENT_CONTROLLER) {
        node =
            c->controller >= 0 && broker_find(c, c->controller) ? c->controller : TRIB_KCLIENT_ANY;
    }
    kconn_t *k = NULL;
    if (node == TRIB_KCLIENT_ANY) {
        k = &c->conns[0];
    } else {
        for (size_t i = 0; i < c->nconns; i++) {
            if (c->conns[i].node == node) {
                k = &c->conns[i];
                break;
            }
        }
        if (!k) {
            const trib_kclient_broker_t *b = broker_find(c, node);
            if (!b) {
                return trib_error_set(err, TRIB_ENOT_FOUND, "broker %d is not in the metadata",
                                      (int)node);
            }
            k = conn_add(c, node, b->host, b->port);
            if (!k) {
                return trib_error_set(err, -ENOMEM, "out of memory");
            }
        }
    }
    if (k->fd < 0) {
        int rc = connect_addr(k->host, k->port, now_ms() + c->timeout_ms, &k->fd);
        if (rc < 0) {
            k->fd = -1;
            return trib_error_set(err, rc, "cannot connect to %s:%d: %s", k->host, k->port,
                                  trib_strerror(rc));
        }
    }
    *out = k;
    return 0;
}

static int send_frame(trib_kclient_t *c, kconn_t *k, int16_t api_key, int16_t version,
                      const void *req, int32_t corr, int64_t deadline, trib_error_t *err)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    trib_buf_reset(&c->out);
    int rc = trib_kclient_frame(&c->out, api_key, version, corr, c->client_id, req);
    if (rc < 0) {
        return trib_error_set(err, rc, "cannot encode %s v%d request: %s",
                              api ? api->name : "unknown", version, trib_strerror(rc));
    }
    int cnt = trib_buf_iovcnt(&c->out);
    struct iovec stackv[64];
    struct iovec *iov = cnt <= 64 ? stackv : malloc((size_t)cnt * sizeof *iov);
    if (!iov) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    cnt = trib_buf_iovec(&c->out, iov, cnt);
    rc = write_all(k->fd, iov, cnt, deadline);
    if (iov != stackv) {
        free(iov);
    }
    if (rc < 0) {
        conn_close(k);
        return trib_error_set(err, rc, "cannot send %s request to %s:%d: %s", api->name, k->host,
                              k->port, trib_strerror(rc));
    }
    return 0;
}

/* Reads one response frame into the arena; *body is past the response header. */
static int recv_frame(trib_kclient_t *c, kconn_t *k, int16_t api_key, int16_t version, int32_t corr,
                      int64_t deadline, trib_arena_t *arena, trib_slice_t *body, trib_error_t *err)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    uint8_t szb[4];
    int rc = read_full(k->fd, szb, 4, deadline);
    if (rc < 0) {
        conn_close(k);
        if (rc == -ETIMEDOUT) {
            return trib_error_set(err, rc, "no %s response from %s:%d within %d ms", api->name,
                                  k->host, k->port, c->timeout_ms);
        }
        return trib_error_set(err, rc, "connection to %s:%d lost waiting for %s response: %s",
                              k->host, k->port, api->name, trib_strerror(rc));
    }
    uint32_t size =
        (uint32_t)szb[0] << 24 | (uint32_t)szb[1] << 16 | (uint32_t)szb[2] << 8 | (uint32_t)szb[3];
    if (size < 4 || size > c->max_response) {
        conn_close(k);
        return trib_error_set(err, TRIB_EMALFORMED, "%s response frame of %u bytes from %s:%d",
                              api->name, size, k->host, k->port);
    }
    uint8_t *data = trib_arena_alloc(arena, size);
    if (!data) {
        conn_close(k);
        return trib_error_set(err, -ENOMEM, "no memory for a %u-byte response", size);
    }
    rc = read_full(k->fd, data, size, deadline);
    if (rc < 0) {
        conn_close(k);
        return trib_error_set(err, rc, "connection to %s:%d lost reading %s response: %s", k->host,
                              k->port, api->name, trib_strerror(rc));
    }
    trib_slice_t s = trib_slice_make(data, size);
    trib_kafka_response_header_t h;
    trib_kafka_response_header_init(&h);
    rc = trib_kafka_response_header_decode(
        &h, &s, trib_kafka_response_header_version(api_key, version), arena);
    if (rc < 0 || h.correlation_id != corr) {
        conn_close(k);
        return trib_error_set(err, TRIB_EMALFORMED,
                              "%s response from %s:%d has correlation id %d, expected %d",
                              api->name, k->host, k->port, (int)h.correlation_id, (int)corr);
    }
    *body = s;
    return 0;
}

static int call_conn(trib_kclient_t *c, kconn_t *k, int16_t api_key, int16_t version,
                     const void *req, void *resp, trib_arena_t *arena, trib_slice_t *body_out,
                     trib_error_t *err)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    if (!api) {
        return trib_error_set(err, TRIB_EUNSUPPORTED, "unknown API key %d", api_key);
    }
    int64_t deadline = now_ms() + c->timeout_ms;
    int32_t corr = c->correlation++;
    if (c->correlation < 0) {
        c->correlation = 0;
    }
    int rc = send_frame(c, k, api_key, version, req, corr, deadline, err);
    if (rc < 0 || !resp) {
        return rc;
    }
    trib_slice_t body;
    rc = recv_frame(c, k, api_key, version, corr, deadline, arena, &body, err);
    if (rc < 0) {
        return rc;
    }
    if (body_out) {
        *body_out = body;
    }
    rc = api->response->decode(resp, &body, version, arena);
    if (rc < 0) {
        return trib_error_set(err, rc, "cannot decode %s v%d response from %s:%d: %s", api->name,
                              version, k->host, k->port, trib_strerror(rc));
    }
    return 0;
}

int trib_kclient_call(trib_kclient_t *c, int32_t node, int16_t api_key, int16_t version,
                      const void *req, void *resp, trib_arena_t *arena, trib_error_t *err)
{
    kconn_t *k = NULL;
    int rc = conn_for(c, node, &k, err);
    if (rc < 0) {
        return rc;
    }
    return call_conn(c, k, api_key, version, req, resp, arena, NULL, err);
}

int trib_kclient_send(trib_kclient_t *c, int32_t node, int16_t api_key, int16_t version,
                      const void *req, trib_error_t *err)
{
    return trib_kclient_call(c, node, api_key, version, req, NULL, NULL, err);
}

/* ---- negotiation ----------------------------------------------------------- */

int16_t trib_kclient_version(const trib_kclient_t *c, int16_t api_key, int16_t min, int16_t max)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    if (!api) {
        return -1;
    }
    if (max > api->max_version) {
        max = api->max_version;
    }
    if (min < api->min_version) {
        min = api->min_version;
    }
    for (size_t i = 0; i < c->nranges; i++) {
        const trib_kclient_api_range_t *r = &c->ranges[i];
        if (r->api_key != api_key) {
            continue;
        }
        int16_t hi = r->max_version < max ? r->max_version : max;
        int16_t lo = r->min_version > min ? r->min_version : min;
        return hi >= lo ? hi : -1;
    }
    return -1;
}

const trib_kclient_api_range_t *trib_kclient_api_ranges(const trib_kclient_t *c, size_t *n)
{
    *n = c->nranges;
    return c->ranges;
}

const trib_kclient_broker_t *trib_kclient_brokers(const trib_kclient_t *c, size_t *n)
{
    *n = c->nbrokers;
    return c->brokers;
}

int32_t trib_kclient_controller(const trib_kclient_t *c)
{
    return c->controller;
}

const char *trib_kclient_cluster_id(const trib_kclient_t *c)
{
    return c->cluster_id;
}

int32_t trib_kclient_bootstrap_node(const trib_kclient_t *c)
{
    return c->nconns ? c->conns[0].node : -1;
}

/*
 * ApiVersions: v3 (or the codec's newest) first. A broker that does not
 * know it answers UNSUPPORTED_VERSION with a v0 body, possibly listing its
 * own ApiVersions range: retry with that maximum, else with v0.
 */
static int negotiate(trib_kclient_t *c, trib_error_t *err)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(API_API_VERSIONS);
    int16_t version = api->max_version < 3 ? api->max_version : 3;
    for (int attempt = 0; attempt < 2; attempt++) {
        trib_arena_t arena;
        trib_arena_init(&arena);
        ApiVersionsRequest req;
        ApiVersionsRequest_init(&req);
        if (version >= 3) {
            req.ClientSoftwareName = trib_kstr(c->software_name);
            req.ClientSoftwareVersion = trib_kstr(c->software_ver);
        }
        ApiVersionsResponse resp;
        trib_slice_t body;
        int rc =
            call_conn(c, &c->conns[0], API_API_VERSIONS, version, &req, &resp, &arena, &body, err);
        if (version > 0 && c->conns[0].fd >= 0 &&
            (rc < 0 || resp.ErrorCode == TRIB_KAFKA_UNSUPPORTED_VERSION)) {
            /*
             * The error body of an unsupported version is v0-shaped (Kafka);
             * some brokers send it in the requested version's shape instead.
             */
            ApiVersionsResponse r0;
            if (ApiVersionsResponse_decode(&r0, &body, 0, &arena) == 0) {
                resp = r0;
                rc = 0;
            }
        }
        if (rc < 0) {
            trib_arena_fini(&arena);
            return rc;
        }
        if (resp.ErrorCode == TRIB_KAFKA_UNSUPPORTED_VERSION && version > 0 && attempt == 0) {
            int16_t next = 0;
            for (int32_t i = 0; i < resp.ApiKeys.count; i++) {
                if (resp.ApiKeys.items[i].ApiKey == API_API_VERSIONS &&
                    resp.ApiKeys.items[i].MaxVersion < version) {
                    next = resp.ApiKeys.items[i].MaxVersion;
                }
            }
            version = next < 0 ? 0 : next;
            trib_arena_fini(&arena);
            continue;
        }
        if (resp.ErrorCode != 0) {
            rc = trib_error_set(err, TRIB_EUNSUPPORTED, "ApiVersions failed: %s",
                                trib_kafka_err_name(resp.ErrorCode));
            trib_arena_fini(&arena);
            return rc;
        }
        size_t n = resp.ApiKeys.count > 0 ? (size_t)resp.ApiKeys.count : 0;
        free(c->ranges);
        c->ranges = calloc(n ? n : 1, sizeof *c->ranges);
        if (!c->ranges) {
            trib_arena_fini(&arena);
            return trib_error_set(err, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            c->ranges[i].api_key = resp.ApiKeys.items[i].ApiKey;
            c->ranges[i].min_version = resp.ApiKeys.items[i].MinVersion;
            c->ranges[i].max_version = resp.ApiKeys.items[i].MaxVersion;
        }
        c->nranges = n;
        trib_arena_fini(&arena);
        return 0;
    }
    return trib_error_set(err, TRIB_EUNSUPPORTED, "ApiVersions: no version in common");
}

int trib_kclient_set_brokers(trib_kclient_t *c, const trib_kclient_broker_t *brokers, size_t n,
                             int32_t controller, const char *cluster_id, size_t cluster_id_len)
{
    trib_kclient_broker_t *nb = calloc(n ? n : 1, sizeof *nb);
    if (!nb) {
        return -ENOMEM;
    }
    if (n) {
        memcpy(nb, brokers, n * sizeof *nb);
    }
    free(c->brokers);
    c->brokers = nb;
    c->nbrokers = n;
    c->controller = controller;
    if (cluster_id_len >= sizeof c->cluster_id) {
        cluster_id_len = sizeof c->cluster_id - 1;
    }
    if (cluster_id && cluster_id_len) {
        memcpy(c->cluster_id, cluster_id, cluster_id_len);
    }
    c->cluster_id[cluster_id ? cluster_id_len : 0] = '\0';
    /* Connections to brokers that moved are closed; the bootstrap one is adopted. */
    for (size_t i = 1; i < c->nconns; i++) {
        const trib_kclient_broker_t *b = broker_find(c, c->conns[i].node);
        if (!b || strcmp(b->host, c->conns[i].host) != 0 || b->port != c->conns[i].port) {
            conn_close(&c->conns[i]);
            if (b) {
                snprintf(c->conns[i].host, sizeof c->conns[i].host, "%s", b->host);
                c->conns[i].port = b->port;
            }
        }
    }
    kconn_t *boot = &c->conns[0];
    if (boot->node < 0) {
        for (size_t i = 0; i < n; i++) {
            if (nb[i].port == boot->port && strcmp(nb[i].host, boot->host) == 0) {
                boot->node = nb[i].node_id;
            }
        }
        if (boot->node < 0 && n == 1) {
            boot->node = nb[0].node_id;
        }
    }
    return 0;
}

static int read_brokers(trib_kclient_t *c, trib_error_t *err)
{
    int16_t v = trib_kclient_version(c, API_METADATA, 1, 12);
    if (v < 0) {
        return trib_error_set(err, TRIB_EUNSUPPORTED,
                              "the broker does not support Metadata v1 or later");
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    MetadataRequest req;
    MetadataRequest_init(&req);
    req.Topics.count = 0;               /* no topics: brokers and controller only */
    req.AllowAutoTopicCreation = v < 4; /* v0-3 cannot say false */
    MetadataResponse resp;
    int rc = call_conn(c, &c->conns[0], API_METADATA, v, &req, &resp, &arena, NULL, err);
    if (rc == 0) {
        size_t n = resp.Brokers.count > 0 ? (size_t)resp.Brokers.count : 0;
        trib_kclient_broker_t *b = calloc(n ? n : 1, sizeof *b);
        if (!b) {
            trib_arena_fini(&arena);
            return trib_error_set(err, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            const MetadataResponse_MetadataResponseBroker *mb = &resp.Brokers.items[i];
            b[i].node_id = mb->NodeId;
            kstr_copy(b[i].host, sizeof b[i].host, mb->Host);
            b[i].port = mb->Port;
            kstr_copy(b[i].rack, sizeof b[i].rack, mb->Rack);
        }
        rc = trib_kclient_set_brokers(c, b, n, resp.ControllerId, resp.ClusterId.ptr,
                                      resp.ClusterId.len > 0 ? (size_t)resp.ClusterId.len : 0);
        free(b);
        if (rc < 0) {
            rc = trib_error_set(err, rc, "out of memory");
        }
    }
    trib_arena_fini(&arena);
    return rc;
}

/* ---- open and close -------------------------------------------------------- */

void trib_kclient_opts_init(trib_kclient_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->bootstrap = DEFAULT_BOOTSTRAP;
    o->client_id = "tributary";
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    o->max_response = DEFAULT_MAX_RESPONSE;
    o->software_name = "tributary";
    o->software_ver = TRIB_VERSION;
}

int trib_kclient_open(trib_kclient_t **out, const trib_kclient_opts_t *o, trib_error_t *err)
{
    *out = NULL;
    trib_kclient_opts_t def;
    trib_kclient_opts_init(&def);
    if (!o) {
        o = &def;
    }
    trib_kclient_t *c = calloc(1, sizeof *c);
    if (!c) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    trib_buf_init(&c->out);
    c->client_id = xstrdup(o->client_id ? o->client_id : def.client_id);
    c->software_name = xstrdup(o->software_name ? o->software_name : def.software_name);
    c->software_ver = xstrdup(o->software_ver ? o->software_ver : def.software_ver);
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : def.timeout_ms;
    c->max_response = o->max_response ? o->max_response : def.max_response;
    c->controller = -1;
    if (!c->client_id || !c->software_name || !c->software_ver) {
        trib_kclient_close(c);
        return trib_error_set(err, -ENOMEM, "out of memory");
    }

    const char *list = o->bootstrap && *o->bootstrap ? o->bootstrap : def.bootstrap;
    int rc = -EINVAL;
    trib_error_set(err, -EINVAL, "empty bootstrap list");
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        /* One entry of the list, as the ADDRESS type reads it; a client needs a host and a port. */
        char addr[300], host[256];
        uint16_t port16 = 0;
        const char *why;
        bool ok = len < sizeof addr;
        if (ok) {
            memcpy(addr, p, len);
            addr[len] = '\0';
            ok = trib_config_parse_address(addr, host, sizeof host, &port16, &why) == 0 &&
                 host[0] && port16 > 0;
        }
        if (!ok) {
            trib_kclient_close(c);
            return trib_error_set(err, -EINVAL, "bad bootstrap address '%.*s' (want HOST:PORT)",
                                  (int)len, p);
        }
        int port = port16;
        if (!c->nconns) {
            if (!conn_add(c, -1, host, port)) {
                trib_kclient_close(c);
                return trib_error_set(err, -ENOMEM, "out of memory");
            }
        } else {
            snprintf(c->conns[0].host, sizeof c->conns[0].host, "%s", host);
            c->conns[0].port = port;
        }
        rc = connect_addr(host, port, now_ms() + c->timeout_ms, &c->conns[0].fd);
        if (rc == 0) {
            rc = negotiate(c, err);
            if (rc == 0) {
                rc = read_brokers(c, err);
            }
            if (rc == 0) {
                *out = c;
                return 0;
            }
            conn_close(&c->conns[0]);
        } else {
            c->conns[0].fd = -1;
            trib_error_set(err, rc, "cannot connect to %s:%d: %s", host, port, trib_strerror(rc));
        }
        if (!comma) {
            break;
        }
        p = comma + 1;
    }
    trib_kclient_close(c);
    return rc < 0 ? rc : -EINVAL;
}

void trib_kclient_close(trib_kclient_t *c)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->nconns; i++) {
        conn_close(&c->conns[i]);
    }
    free(c->conns);
    free(c->ranges);
    free(c->brokers);
    free(c->client_id);
    free(c->software_name);
    free(c->software_ver);
    trib_buf_fini(&c->out);
    free(c);
}
