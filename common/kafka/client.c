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
 *
 * Security: with TLS a connection runs OpenSSL over the same non-blocking
 * socket (a BIO of ours that sends with MSG_NOSIGNAL, so that a broker
 * closing the connection is an error, not a SIGPIPE); frames are gathered
 * into 16 KiB writes. With SASL a connection logs in right after it is
 * made (the bootstrap connection after ApiVersions, which a SASL listener
 * answers before the login): SaslHandshake v1, then SaslAuthenticate with
 * PLAIN's one message or SCRAM's two, whose server signature is checked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tributary/config.h"
#include "tributary/kafka_error.h"
#include "tributary/kclient.h"
#include "tributary/scram.h"

#include "kafka/gen/ApiVersionsRequest.h"
#include "kafka/gen/ApiVersionsResponse.h"
#include "kafka/gen/MetadataRequest.h"
#include "kafka/gen/MetadataResponse.h"
#include "kafka/gen/SaslAuthenticateRequest.h"
#include "kafka/gen/SaslAuthenticateResponse.h"
#include "kafka/gen/SaslHandshakeRequest.h"
#include "kafka/gen/SaslHandshakeResponse.h"

#define API_METADATA 3
#define API_SASL_HANDSHAKE 17
#define API_API_VERSIONS 18
#define API_SASL_AUTHENTICATE 36

#define DEFAULT_BOOTSTRAP "127.0.0.1:9092"
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE ((size_t)256 << 20)

typedef struct kconn {
    int32_t node; /* -1 until known (the bootstrap connection) */
    char host[256];
    int port;
    int fd;            /* -1 when closed */
    SSL *ssl;          /* with TLS, once the handshake started */
    char tls_why[200]; /* why the last TLS read or write failed, "" if none did */
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

    trib_kclient_security_t sec;
    bool tls;
    bool sasl;
    SSL_CTX *ssl_ctx;

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

/* ---- TLS ------------------------------------------------------------------- */

/* The BIO under a connection's SSL: the socket, sent to with MSG_NOSIGNAL. */
typedef struct kbio {
    int fd;
    bool eof;
} kbio_t;

static BIO_METHOD *kbio_method;
static pthread_once_t kbio_once = PTHREAD_ONCE_INIT;

static int kbio_write(BIO *b, const char *data, size_t len, size_t *written)
{
    kbio_t *k = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = send(k->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            BIO_set_retry_write(b);
        }
        return 0;
    }
    *written = (size_t)n;
    return 1;
}

static int kbio_read(BIO *b, char *data, size_t len, size_t *got)
{
    kbio_t *k = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = recv(k->fd, data, len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            BIO_set_retry_read(b);
        }
        return 0;
    }
    if (n == 0) {
        k->eof = true;
        return 0;
    }
    *got = (size_t)n;
    return 1;
}

static long kbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    kbio_t *k = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return k && k->eof;
    default:
        return 0;
    }
}

static int kbio_destroy(BIO *b)
{
    free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

static void kbio_init_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tributary-kclient");
    if (m && BIO_meth_set_write_ex(m, kbio_write) && BIO_meth_set_read_ex(m, kbio_read) &&
        BIO_meth_set_ctrl(m, kbio_ctrl) && BIO_meth_set_destroy(m, kbio_destroy)) {
        kbio_method = m;
    } else if (m) {
        BIO_meth_free(m);
    }
}

static BIO *kbio_new(int fd)
{
    pthread_once(&kbio_once, kbio_init_method);
    kbio_t *k = calloc(1, sizeof(*k));
    BIO *b = kbio_method && k ? BIO_new(kbio_method) : NULL;
    if (!b) {
        free(k);
        return NULL;
    }
    k->fd = fd;
    BIO_set_data(b, k);
    BIO_set_init(b, 1);
    return b;
}

/*
 * Why an SSL call failed, in words: the certificate check's verdict when
 * it failed, else OpenSSL's reason, else a closed connection. Clears
 * OpenSSL's error queue.
 */
static const char *tls_why(SSL *ssl, int sslerr, char *buf, size_t cap)
{
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    if (vr != X509_V_OK) {
        snprintf(buf, cap, "the broker's certificate was refused: %s",
                 X509_verify_cert_error_string(vr));
    } else if (e) {
        const char *r = ERR_reason_error_string(e);
        char tmp[160];
        if (!r) {
            ERR_error_string_n(e, tmp, sizeof(tmp));
            r = tmp;
        }
        snprintf(buf, cap, "%s", r);
    } else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
        snprintf(buf, cap, "the broker closed the connection");
    } else {
        snprintf(buf, cap, "TLS error %d", sslerr);
    }
    ERR_clear_error();
    return buf;
}

/*
 * Waits for what an SSL call with result ret asks for: 0 to call again, or
 * a negative code (the reason in k->tls_why).
 */
static int tls_wait(kconn_t *k, int ret, int64_t deadline)
{
    int e = SSL_get_error(k->ssl, ret);
    if (e == SSL_ERROR_WANT_READ) {
        return wait_fd(k->fd, POLLIN, deadline);
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        return wait_fd(k->fd, POLLOUT, deadline);
    }
    tls_why(k->ssl, e, k->tls_why, sizeof(k->tls_why));
    return e == SSL_ERROR_SSL ? -EPROTO : -ECONNRESET;
}

static bool is_ip_literal(const char *host)
{
    struct in6_addr a;
    return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
}

/* The TLS handshake on k's connected socket; the broker's certificate is checked. */
static int tls_handshake(trib_kclient_t *c, kconn_t *k, int64_t deadline, trib_error_t *err)
{
    k->tls_why[0] = '\0';
    k->ssl = SSL_new(c->ssl_ctx);
    BIO *b = k->ssl ? kbio_new(k->fd) : NULL;
    if (!b) {
        ERR_clear_error();
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    SSL_set_bio(k->ssl, b, b);
    X509_VERIFY_PARAM *vp = SSL_get0_param(k->ssl);
    bool ip = is_ip_literal(k->host);
    if (!ip) {
        SSL_set_tlsext_host_name(k->ssl, k->host);
    }
    if (c->sec.verify_hostname) {
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, k->host)
                    : X509_VERIFY_PARAM_set1_host(vp, k->host, 0);
        if (!ok) {
            ERR_clear_error();
            return trib_error_set(err, -EINVAL, "cannot verify the host name '%s'", k->host);
        }
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(k->ssl);
        if (r == 1) {
            return 0;
        }
        int rc = tls_wait(k, r, deadline);
        if (rc == -ETIMEDOUT) {
            return trib_error_set(err, rc, "TLS handshake with %s:%d: no answer within %d ms",
                                  k->host, k->port, c->timeout_ms);
        }
        if (rc < 0) {
            return trib_error_set(err, -EPROTO, "TLS handshake with %s:%d failed: %s%s", k->host,
                                  k->port, k->tls_why[0] ? k->tls_why : trib_strerror(rc),
                                  strstr(k->tls_why, "wrong version number") ||
                                          strstr(k->tls_why, "packet length too long") ||
                                          strstr(k->tls_why, "unexpected eof") ||
                                          strstr(k->tls_why, "closed the connection")
                                      ? " (is it a TLS listener?)"
                                      : "");
        }
    }
}

static int tls_write_all(kconn_t *k, struct iovec *iov, int cnt, int64_t deadline)
{
    uint8_t chunk[16384];
    while (cnt > 0) {
        size_t fill = 0;
        while (cnt > 0 && fill < sizeof(chunk)) {
            size_t take = iov->iov_len < sizeof(chunk) - fill ? iov->iov_len : sizeof(chunk) - fill;
            memcpy(chunk + fill, iov->iov_base, take);
            fill += take;
            iov->iov_base = (uint8_t *)iov->iov_base + take;
            iov->iov_len -= take;
            if (iov->iov_len == 0) {
                iov++;
                cnt--;
            }
        }
        for (;;) {
            size_t n = 0;
            ERR_clear_error();
            int r = SSL_write_ex(k->ssl, chunk, fill, &n);
            if (r == 1) {
                break;
            }
            int rc = tls_wait(k, r, deadline);
            if (rc < 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int tls_read_full(kconn_t *k, uint8_t *dst, size_t len, int64_t deadline)
{
    while (len > 0) {
        size_t n = 0;
        ERR_clear_error();
        int r = SSL_read_ex(k->ssl, dst, len, &n);
        if (r == 1) {
            dst += n;
            len -= n;
            continue;
        }
        int rc = tls_wait(k, r, deadline);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* The client's TLS context from the security settings, or NULL with err set. */
static SSL_CTX *tls_ctx_new(const trib_kclient_security_t *s, trib_error_t *err)
{
    char why[200];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        trib_error_set(err, -ENOMEM, "cannot make a TLS context: %s",
                       tls_why(NULL, 0, why, sizeof(why)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    const char *what = NULL, *file = NULL;
    if (s->ca_location[0]) {
        if (SSL_CTX_load_verify_locations(ctx, s->ca_location, NULL) != 1) {
            what = "ssl.ca.location";
            file = s->ca_location;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        what = "the system's CA certificates";
        file = "";
    }
    if (!what && s->cert_location[0]) {
        if (s->key_password[0]) {
            SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)s->key_password);
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, s->cert_location) != 1) {
            what = "ssl.certificate.location";
            file = s->cert_location;
        } else if (SSL_CTX_use_PrivateKey_file(ctx, s->key_location, SSL_FILETYPE_PEM) != 1) {
            what = "ssl.key.location";
            file = s->key_location;
        } else if (SSL_CTX_check_private_key(ctx) != 1) {
            what = "ssl.key.location (it does not match the certificate)";
            file = s->key_location;
        }
        SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    }
    if (what) {
        trib_error_set(err, -EINVAL, "cannot load %s %s: %s (a PEM file is needed)", what, file,
                       tls_why(NULL, 0, why, sizeof(why)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- plain sockets ---------------------------------------------------------- */

static int write_all(kconn_t *k, struct iovec *iov, int cnt, int64_t deadline)
{
    if (k->ssl) {
        return tls_write_all(k, iov, cnt, deadline);
    }
    int fd = k->fd;
    while (cnt > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)(cnt > IOV_MAX ? IOV_MAX : cnt)};
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
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

static int read_full(kconn_t *k, void *p, size_t len, int64_t deadline)
{
    if (k->ssl) {
        return tls_read_full(k, p, len, deadline);
    }
    int fd = k->fd;
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

/* Why a read or write on k failed: TLS's reason when it had one. */
static const char *io_why(const kconn_t *k, int rc)
{
    return k->tls_why[0] ? k->tls_why : trib_strerror(rc);
}

static void conn_close(kconn_t *k)
{
    if (k->ssl) {
        if (SSL_is_init_finished(k->ssl) && !k->tls_why[0]) {
            (void)SSL_shutdown(k->ssl); /* one close_notify, not waited for */
        }
        SSL_free(k->ssl); /* and its BIO */
        k->ssl = NULL;
        ERR_clear_error();
    }
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
    k->ssl = NULL;
    k->tls_why[0] = '\0';
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

static int sasl_login(trib_kclient_t *c, kconn_t *k, trib_error_t *err);

/*
 * Connects k: TCP, then the TLS handshake and (with login) the SASL login
 * when the settings ask for them. On an error k is closed.
 */
static int conn_connect(trib_kclient_t *c, kconn_t *k, bool login, trib_error_t *err)
{
    int64_t deadline = now_ms() + c->timeout_ms;
    int rc = connect_addr(k->host, k->port, deadline, &k->fd);
    if (rc < 0) {
        k->fd = -1;
        return trib_error_set(err, rc, "cannot connect to %s:%d: %s", k->host, k->port,
                              trib_strerror(rc));
    }
    if (c->tls) {
        rc = tls_handshake(c, k, deadline, err);
    }
    if (rc == 0 && login && c->sasl) {
        rc = sasl_login(c, k, err);
    }
    if (rc < 0) {
        conn_close(k);
    }
    return rc;
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
        int rc = conn_connect(c, k, true, err);
        if (rc < 0) {
            return rc;
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
    rc = write_all(k, iov, cnt, deadline);
    if (iov != stackv) {
        free(iov);
    }
    if (rc < 0) {
        conn_close(k);
        return trib_error_set(err, rc, "cannot send %s request to %s:%d: %s", api->name, k->host,
                              k->port, io_why(k, rc));
    }
    return 0;
}

/* Reads one response frame into the arena; *body is past the response header. */
static int recv_frame(trib_kclient_t *c, kconn_t *k, int16_t api_key, int16_t version, int32_t corr,
                      int64_t deadline, trib_arena_t *arena, trib_slice_t *body, trib_error_t *err)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    uint8_t szb[4];
    int rc = read_full(k, szb, 4, deadline);
    if (rc < 0) {
        conn_close(k);
        if (rc == -ETIMEDOUT) {
            return trib_error_set(err, rc, "no %s response from %s:%d within %d ms", api->name,
                                  k->host, k->port, c->timeout_ms);
        }
        return trib_error_set(err, rc, "connection to %s:%d lost waiting for %s response: %s",
                              k->host, k->port, api->name, io_why(k, rc));
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
    rc = read_full(k, data, size, deadline);
    if (rc < 0) {
        conn_close(k);
        return trib_error_set(err, rc, "connection to %s:%d lost reading %s response: %s", k->host,
                              k->port, api->name, io_why(k, rc));
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

/* ---- SASL ----------------------------------------------------------------- */

/* One SaslAuthenticate round: sends tok, *out is the broker's answer (in arena). */
static int sasl_step(trib_kclient_t *c, kconn_t *k, int16_t version, const void *tok, size_t n,
                     trib_kbytes_t *out, trib_arena_t *arena, trib_error_t *err)
{
    SaslAuthenticateRequest req;
    SaslAuthenticateRequest_init(&req);
    req.AuthBytes.ptr = tok;
    req.AuthBytes.len = (int32_t)n;
    SaslAuthenticateResponse resp;
    int rc = call_conn(c, k, API_SASL_AUTHENTICATE, version, &req, &resp, arena, NULL, err);
    if (rc < 0) {
        return rc;
    }
    if (resp.ErrorCode != 0) {
        conn_close(k);
        trib_kstr_t m = resp.ErrorMessage;
        return trib_error_set(
            err, resp.ErrorCode == TRIB_KAFKA_SASL_AUTHENTICATION_FAILED ? -EACCES : -EPROTO,
            "SASL %s login as '%s' on %s:%d refused: %s: %.*s", c->sec.mechanism, c->sec.username,
            k->host, k->port, trib_kafka_err_name(resp.ErrorCode),
            m.len > 0 ? (int)m.len : (int)strlen(trib_kafka_err_message(resp.ErrorCode)),
            m.len > 0 ? m.ptr : trib_kafka_err_message(resp.ErrorCode));
    }
    *out = resp.AuthBytes;
    if (out->len < 0) {
        out->len = 0;
    }
    return 0;
}

static int sasl_scram(trib_kclient_t *c, kconn_t *k, int16_t version, int mech, trib_arena_t *arena,
                      trib_error_t *err)
{
    trib_scram_client_t sc;
    char cnonce[33], msg[TRIB_SCRAM_MSG_MAX + 1];
    const char *why = NULL;
    trib_kbytes_t answer;
    int rc = trib_scram_nonce(cnonce);
    int n =
        rc < 0 ? rc : trib_scram_client_first(&sc, mech, c->sec.username, cnonce, msg, sizeof msg);
    if (n < 0) {
        rc = trib_error_set(err, n, "SCRAM: cannot log in as '%s' (user name too long?)",
                            c->sec.username);
        goto out;
    }
    rc = sasl_step(c, k, version, msg, (size_t)n, &answer, arena, err);
    if (rc < 0) {
        goto out;
    }
    n = trib_scram_client_final(&sc, c->sec.password, strlen(c->sec.password), answer.ptr,
                                (size_t)answer.len, msg, sizeof msg, &why);
    if (n < 0) {
        conn_close(k);
        rc = trib_error_set(err, -EPROTO, "SASL %s on %s:%d: %s", c->sec.mechanism, k->host,
                            k->port, why ? why : trib_strerror(n));
        goto out;
    }
    rc = sasl_step(c, k, version, msg, (size_t)n, &answer, arena, err);
    if (rc < 0) {
        goto out;
    }
    rc = trib_scram_client_verify(&sc, answer.ptr, (size_t)answer.len, &why);
    if (rc < 0) {
        conn_close(k);
        rc = trib_error_set(err, rc, "SASL %s login as '%s' on %s:%d failed: %s", c->sec.mechanism,
                            c->sec.username, k->host, k->port, why);
    }
out:
    OPENSSL_cleanse(msg, sizeof msg);
    trib_scram_client_fini(&sc);
    return rc;
}

/*
 * Logs k in with the settings' mechanism: SaslHandshake v1 (the mechanism
 * must be one the broker offers), then SaslAuthenticate.
 */
static int sasl_login(trib_kclient_t *c, kconn_t *k, trib_error_t *err)
{
    int16_t hv = trib_kclient_version(c, API_SASL_HANDSHAKE, 1, 1);
    int16_t av = trib_kclient_version(c, API_SASL_AUTHENTICATE, 0, 2);
    if (hv < 0 || av < 0) {
        conn_close(k);
        return trib_error_set(err, -ENOTSUP,
                              "%s:%d does not offer SaslHandshake v1 and SaslAuthenticate", k->host,
                              k->port);
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    SaslHandshakeRequest hreq;
    SaslHandshakeRequest_init(&hreq);
    hreq.Mechanism = trib_kstr(c->sec.mechanism);
    SaslHandshakeResponse hresp;
    int rc = call_conn(c, k, API_SASL_HANDSHAKE, hv, &hreq, &hresp, &arena, NULL, err);
    if (rc == 0 && hresp.ErrorCode != 0) {
        char offered[256] = "";
        size_t o = 0;
        for (int32_t i = 0; i < hresp.Mechanisms.count && o < sizeof offered; i++) {
            int w = snprintf(offered + o, sizeof offered - o, "%s%.*s", i ? ", " : "",
                             (int)hresp.Mechanisms.items[i].len, hresp.Mechanisms.items[i].ptr);
            o += w > 0 ? (size_t)w : 0;
        }
        conn_close(k);
        if (hresp.ErrorCode == TRIB_KAFKA_UNSUPPORTED_SASL_MECHANISM) {
            rc = trib_error_set(err, -ENOTSUP,
                                "%s:%d does not offer SASL mechanism %s (it offers: %s)", k->host,
                                k->port, c->sec.mechanism, offered[0] ? offered : "none");
        } else {
            rc = trib_error_set(err, -EPROTO, "SaslHandshake with %s:%d: %s%s", k->host, k->port,
                                trib_kafka_err_name(hresp.ErrorCode),
                                hresp.ErrorCode == TRIB_KAFKA_ILLEGAL_SASL_STATE
                                    ? " (is it a SASL listener?)"
                                    : "");
        }
    }
    if (rc == 0) {
        int mech = trib_scram_mech_parse(c->sec.mechanism);
        if (mech) {
            rc = sasl_scram(c, k, av, mech, &arena, err);
        } else {
            /* PLAIN: authzid (empty) NUL user NUL password */
            size_t ul = strlen(c->sec.username), pl = strlen(c->sec.password);
            uint8_t tok[2 + sizeof c->sec.username + sizeof c->sec.password];
            tok[0] = 0;
            memcpy(tok + 1, c->sec.username, ul);
            tok[1 + ul] = 0;
            memcpy(tok + 2 + ul, c->sec.password, pl);
            trib_kbytes_t answer;
            rc = sasl_step(c, k, av, tok, 2 + ul + pl, &answer, &arena, err);
            OPENSSL_cleanse(tok, sizeof tok);
        }
    }
    trib_arena_fini(&arena);
    return rc;
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
    if (o->security) {
        int rc = trib_kclient_security_check(o->security, err);
        if (rc < 0) {
            trib_kclient_close(c);
            return rc;
        }
        c->sec = *o->security;
    } else {
        trib_kclient_security_init(&c->sec);
    }
    c->tls = c->sec.protocol == TRIB_KCLIENT_SSL || c->sec.protocol == TRIB_KCLIENT_SASL_SSL;
    c->sasl =
        c->sec.protocol == TRIB_KCLIENT_SASL_PLAINTEXT || c->sec.protocol == TRIB_KCLIENT_SASL_SSL;
    if (c->tls && !(c->ssl_ctx = tls_ctx_new(&c->sec, err))) {
        int rc = err ? err->code : -EINVAL;
        trib_kclient_close(c);
        return rc;
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
        /* ApiVersions comes before the SASL login, which needs its versions. */
        rc = conn_connect(c, &c->conns[0], false, err);
        if (rc == 0) {
            rc = negotiate(c, err);
            if (rc == 0 && c->sasl) {
                rc = sasl_login(c, &c->conns[0], err);
            }
            if (rc == 0) {
                rc = read_brokers(c, err);
            }
            if (rc == 0) {
                *out = c;
                return 0;
            }
            conn_close(&c->conns[0]);
        }
        if (!comma || rc == -EACCES) {
            /* A refused login is the same on every broker of the cluster. */
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
    SSL_CTX_free(c->ssl_ctx);
    OPENSSL_cleanse(&c->sec, sizeof c->sec);
    free(c);
}
