/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The small Kafka client (kclient.h): helpers (murmur2 against Kafka's own
 * test vectors, topic id base64, host:port), request frames read back by
 * the broker-side header parser and decoders, and a whole conversation
 * with a scripted broker on 127.0.0.1 in a thread: ApiVersions v3 answered
 * UNSUPPORTED_VERSION with a v0 body (the client must retry lower),
 * Metadata, a Produce whose batch the broker parses, acks=0 (no response),
 * and a broker that never answers (the call must time out, not hang);
 * --command-config's properties files, good and bad.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tributary/kafka_error.h"
#include "tributary/kclient.h"
#include "tributary/record.h"

#include "kafka/gen/ApiVersionsRequest.h"
#include "kafka/gen/ApiVersionsResponse.h"
#include "kafka/gen/MetadataRequest.h"
#include "kafka/gen/MetadataResponse.h"
#include "kafka/gen/ProduceRequest.h"
#include "kafka/gen/ProduceResponse.h"

static void test_murmur2(void **state)
{
    (void)state;
    /* Kafka's UtilsTest.testMurmur2 and kafka-python's murmur2. */
    assert_int_equal(trib_kafka_murmur2("21", 2), -973932308);
    assert_int_equal(trib_kafka_murmur2("foobar", 6), -790332482);
    assert_int_equal(trib_kafka_murmur2("a-little-bit-long-string", 24), -985981536);
    assert_int_equal(trib_kafka_murmur2("abc", 3), 479470107);
    assert_int_equal(trib_kafka_murmur2("", 0), 275646681);
    /* 1684045097 % 6 */
    assert_int_equal(trib_kafka_partition_for_key("k1", 2, 6), 1684045097 % 6);
    assert_int_equal(trib_kafka_partition_for_key("21", 2, 1), 0);
    assert_int_equal(trib_kafka_partition_for_key("21", 2, 0), -1);
}

/* The bootstrap list is read as the configuration's ADDRESS type (trib_config_parse_address),
 * and a client needs a host and a port: the entries it refuses before connecting. */
static void test_hostport(void **state)
{
    (void)state;
    const char *bad[] = {"host",       ":9092",      "host:",         "host:0",
                         "host:65536", "host:12a",   "[::1]9092",     "[::1]",
                         "::1:9092",   "bad host:1", "300.1.1.1:9092"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        trib_kclient_opts_t o;
        trib_kclient_opts_init(&o);
        o.bootstrap = bad[i];
        trib_kclient_t *c = NULL;
        trib_error_t err;
        trib_error_clear(&err);
        assert_int_equal(trib_kclient_open(&c, &o, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "HOST:PORT"));
        assert_null(c);
    }
}

/* A frame the client writes must read back through the broker's parser. */
static void test_frame_roundtrip(void **state)
{
    (void)state;
    for (int16_t v = 0; v <= 12; v++) {
        MetadataRequest req;
        MetadataRequest_init(&req);
        MetadataRequest_MetadataRequestTopic t;
        MetadataRequest_MetadataRequestTopic_init(&t);
        t.Name = trib_kstr("events");
        req.Topics.items = &t;
        req.Topics.count = 1;
        if (v >= 4) {
            req.AllowAutoTopicCreation = false;
        }
        trib_buf_t b;
        trib_buf_init(&b);
        assert_int_equal(trib_kclient_frame(&b, 3, v, 77, "cli-test", &req), 0);
        size_t len;
        const uint8_t *p = trib_buf_flatten(&b, &len);
        trib_slice_t s = trib_slice_make(p, len);
        assert_int_equal(trib_slice_i32(&s), (int32_t)(len - 4));
        trib_arena_t a;
        trib_arena_init(&a);
        trib_kafka_request_header_t h;
        int16_t hv;
        assert_int_equal(trib_kafka_request_header_parse(&h, &s, &a, &hv), 0);
        assert_int_equal(h.api_key, 3);
        assert_int_equal(h.api_version, v);
        assert_int_equal(h.correlation_id, 77);
        assert_int_equal(hv, v >= 9 ? 2 : 1);
        assert_int_equal(h.client_id.len, 8);
        assert_memory_equal(h.client_id.ptr, "cli-test", 8);
        MetadataRequest back;
        assert_int_equal(MetadataRequest_decode(&back, &s, v, &a), 0);
        assert_int_equal(trib_slice_remaining(&s), 0);
        assert_int_equal(back.Topics.count, 1);
        assert_int_equal(back.Topics.items[0].Name.len, 6);
        assert_memory_equal(back.Topics.items[0].Name.ptr, "events", 6);
        assert_int_equal(back.AllowAutoTopicCreation, v < 4);
        trib_arena_fini(&a);
        trib_buf_fini(&b);
    }
    /* A field the version cannot carry is refused, not silently dropped. */
    MetadataRequest req;
    MetadataRequest_init(&req);
    req.AllowAutoTopicCreation = false;
    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(trib_kclient_frame(&b, 3, 3, 1, "x", &req), TRIB_EUNSUPPORTED_VERSION);
    trib_buf_reset(&b);
    assert_int_equal(trib_kclient_frame(&b, 3, 99, 1, "x", &req), TRIB_EUNSUPPORTED_VERSION);
    trib_buf_reset(&b);
    assert_int_equal(trib_kclient_frame(&b, 9999, 0, 1, "x", &req), TRIB_EUNSUPPORTED);
    trib_buf_fini(&b);
}

/* ---- a scripted broker -------------------------------------------------------- */

typedef struct fake {
    int lfd;
    int port;
    bool silent; /* read requests, never answer */
    /* what it saw */
    int apiversions_versions[4];
    int napiversions;
    int produce_records;
    int produce_acks0;
    char sw_name[32];
    pthread_t thread;
} fake_t;

static int read_n(int fd, void *p, size_t n)
{
    uint8_t *d = p;
    while (n) {
        ssize_t r = read(fd, d, n);
        if (r <= 0) {
            return -1;
        }
        d += r;
        n -= (size_t)r;
    }
    return 0;
}

static void send_response(int fd, int16_t api_key, int16_t version, int32_t corr,
                          const trib_kafka_codec_t *codec, const void *body, int16_t body_version)
{
    trib_buf_t b;
    trib_buf_init(&b);
    size_t pos = trib_buf_reserve(&b, 4);
    trib_kafka_response_header_t h;
    trib_kafka_response_header_init(&h);
    h.correlation_id = corr;
    assert_int_equal(trib_kafka_response_header_encode(
                         &h, &b, trib_kafka_response_header_version(api_key, version)),
                     0);
    assert_int_equal(codec->encode(body, &b, body_version), 0);
    trib_buf_patch_i32(&b, pos, (int32_t)(trib_buf_len(&b) - 4));
    size_t len;
    const uint8_t *p = trib_buf_flatten(&b, &len);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    trib_buf_fini(&b);
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) {
        return NULL;
    }
    for (;;) {
        uint8_t szb[4];
        if (read_n(fd, szb, 4) < 0) {
            break;
        }
        uint32_t size =
            (uint32_t)szb[0] << 24 | (uint32_t)szb[1] << 16 | (uint32_t)szb[2] << 8 | szb[3];
        uint8_t *data = malloc(size);
        if (!data || read_n(fd, data, size) < 0) {
            free(data);
            break;
        }
        if (f->silent) {
            free(data);
            continue;
        }
        trib_arena_t a;
        trib_arena_init(&a);
        trib_slice_t s = trib_slice_make(data, size);
        trib_kafka_request_header_t h;
        int16_t hv;
        if (trib_kafka_request_header_parse(&h, &s, &a, &hv) < 0) {
            trib_arena_fini(&a);
            free(data);
            break;
        }
        if (h.api_key == 18) {
            ApiVersionsRequest req;
            ApiVersionsRequest_decode(&req, &s, h.api_version, &a);
            f->apiversions_versions[f->napiversions++ & 3] = h.api_version;
            if (req.ClientSoftwareName.len > 0) {
                snprintf(f->sw_name, sizeof f->sw_name, "%.*s", (int)req.ClientSoftwareName.len,
                         req.ClientSoftwareName.ptr);
            }
            ApiVersionsResponse r;
            ApiVersionsResponse_init(&r);
            ApiVersionsResponse_ApiVersion keys[3];
            for (int i = 0; i < 3; i++) {
                ApiVersionsResponse_ApiVersion_init(&keys[i]);
            }
            keys[0].ApiKey = 18;
            keys[0].MaxVersion = 2;
            keys[1].ApiKey = 3;
            keys[1].MaxVersion = 12;
            keys[2].ApiKey = 0;
            keys[2].MinVersion = 3;
            keys[2].MaxVersion = 7;
            r.ApiKeys.items = keys;
            if (h.api_version > 2) {
                /* Kafka: UNSUPPORTED_VERSION, v0 body, listing ApiVersions only. */
                r.ErrorCode = TRIB_KAFKA_UNSUPPORTED_VERSION;
                r.ApiKeys.count = 1;
                send_response(fd, 18, h.api_version, h.correlation_id, &ApiVersionsResponse_codec,
                              &r, 0);
            } else {
                r.ApiKeys.count = 3;
                send_response(fd, 18, h.api_version, h.correlation_id, &ApiVersionsResponse_codec,
                              &r, h.api_version);
            }
        } else if (h.api_key == 3) {
            MetadataResponse r;
            MetadataResponse_init(&r);
            MetadataResponse_MetadataResponseBroker br;
            MetadataResponse_MetadataResponseBroker_init(&br);
            br.NodeId = 7;
            br.Host = trib_kstr("127.0.0.1");
            br.Port = f->port;
            r.Brokers.items = &br;
            r.Brokers.count = 1;
            r.ControllerId = 7;
            r.ClusterId = trib_kstr("test-cluster");
            r.Topics.count = 0;
            send_response(fd, 3, h.api_version, h.correlation_id, &MetadataResponse_codec, &r,
                          h.api_version);
        } else if (h.api_key == 0) {
            ProduceRequest req;
            assert_int_equal(ProduceRequest_decode(&req, &s, h.api_version, &a), 0);
            int n = 0;
            const trib_kbytes_t *rec = &req.TopicData.items[0].PartitionData.items[0].Records;
            trib_batch_iter_t it;
            trib_batch_iter_init(&it, rec->ptr, (size_t)rec->len, 0);
            trib_batch_t batch;
            while (trib_batch_iter_next(&it, &batch) == 1) {
                n += batch.record_count;
            }
            f->produce_records += n;
            if (req.Acks == 0) {
                f->produce_acks0++;
            } else {
                ProduceResponse r;
                ProduceResponse_init(&r);
                ProduceResponse_TopicProduceResponse tr;
                ProduceResponse_TopicProduceResponse_init(&tr);
                ProduceResponse_PartitionProduceResponse pr;
                ProduceResponse_PartitionProduceResponse_init(&pr);
                pr.Index = 0;
                pr.BaseOffset = 42;
                tr.Name = req.TopicData.items[0].Name;
                tr.PartitionResponses.items = &pr;
                tr.PartitionResponses.count = 1;
                r.Responses.items = &tr;
                r.Responses.count = 1;
                send_response(fd, 0, h.api_version, h.correlation_id, &ProduceResponse_codec, &r,
                              h.api_version);
            }
        }
        trib_arena_fini(&a);
        free(data);
    }
    close(fd);
    return NULL;
}

static void fake_start(fake_t *f, bool silent)
{
    memset(f, 0, sizeof *f);
    f->silent = silent;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake_t *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->lfd);
}

static void test_conversation(void **state)
{
    (void)state;
    fake_t f;
    fake_start(&f, false);
    char boot[64];
    snprintf(boot, sizeof boot, "127.0.0.1:%d", f.port);
    trib_kclient_opts_t o;
    trib_kclient_opts_init(&o);
    o.bootstrap = boot;
    o.timeout_ms = 10000;
    trib_kclient_t *c;
    trib_error_t err;
    trib_error_clear(&err);
    assert_int_equal(trib_kclient_open(&c, &o, &err), 0);

    /* v3 refused with a v0 body listing ApiVersions 0-2: retried at v2. */
    assert_int_equal(f.napiversions, 2);
    assert_int_equal(f.apiversions_versions[0], 3);
    assert_int_equal(f.apiversions_versions[1], 2);
    assert_string_equal(f.sw_name, "tributary");
    assert_int_equal(trib_kclient_version(c, 3, 1, 12), 12);
    assert_int_equal(trib_kclient_version(c, 3, 1, 5), 5);
    assert_int_equal(trib_kclient_version(c, 0, 3, 11), 7);
    assert_int_equal(trib_kclient_version(c, 0, 8, 11), -1);
    assert_int_equal(trib_kclient_version(c, 1, 4, 12), -1); /* Fetch not advertised */
    size_t n;
    const trib_kclient_broker_t *b = trib_kclient_brokers(c, &n);
    assert_int_equal(n, 1);
    assert_int_equal(b[0].node_id, 7);
    assert_int_equal(trib_kclient_controller(c), 7);
    assert_int_equal(trib_kclient_bootstrap_node(c), 7);
    assert_string_equal(trib_kclient_cluster_id(c), "test-cluster");

    /* A Produce to the leader (the same connection) and its response. */
    trib_buf_t batch;
    trib_buf_init(&batch);
    trib_batch_opts_t bo;
    trib_batch_opts_init(&bo);
    bo.codec = TRIB_CODEC_GZIP;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &batch, &bo), 0);
    for (int i = 0; i < 3; i++) {
        trib_record_in_t r;
        memset(&r, 0, sizeof r);
        r.key = trib_record_bytes("k", 1);
        r.value = trib_record_bytes("value", 5);
        assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
    }
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    size_t blen;
    const uint8_t *bp = trib_buf_flatten(&batch, &blen);
    ProduceRequest req;
    ProduceRequest_init(&req);
    ProduceRequest_TopicProduceData td;
    ProduceRequest_TopicProduceData_init(&td);
    ProduceRequest_PartitionProduceData pd;
    ProduceRequest_PartitionProduceData_init(&pd);
    pd.Records.ptr = bp;
    pd.Records.len = (int32_t)blen;
    td.Name = trib_kstr("events");
    td.PartitionData.items = &pd;
    td.PartitionData.count = 1;
    req.Acks = 1;
    req.TimeoutMs = 1000;
    req.TopicData.items = &td;
    req.TopicData.count = 1;
    trib_arena_t a;
    trib_arena_init(&a);
    ProduceResponse resp;
    assert_int_equal(trib_kclient_call(c, 7, 0, 7, &req, &resp, &a, &err), 0);
    assert_int_equal(resp.Responses.count, 1);
    assert_int_equal(resp.Responses.items[0].PartitionResponses.items[0].BaseOffset, 42);
    assert_int_equal(f.produce_records, 3);

    /* acks=0: written, nothing read; the next call still pairs up. */
    req.Acks = 0;
    assert_int_equal(trib_kclient_send(c, 7, 0, 7, &req, &err), 0);
    req.Acks = -1;
    assert_int_equal(trib_kclient_call(c, TRIB_KCLIENT_ANY, 0, 7, &req, &resp, &a, &err), 0);
    assert_int_equal(f.produce_records, 9);
    assert_int_equal(f.produce_acks0, 1);

    /* An unknown node is an error, not a crash. */
    assert_int_equal(trib_kclient_call(c, 99, 0, 7, &req, &resp, &a, &err), TRIB_ENOT_FOUND);
    assert_non_null(strstr(err.msg, "broker 99"));

    trib_arena_fini(&a);
    trib_buf_fini(&batch);
    trib_kclient_close(c);
    fake_stop(&f);
}

static void test_timeout_and_refused(void **state)
{
    (void)state;
    fake_t f;
    fake_start(&f, true);
    char boot[64];
    snprintf(boot, sizeof boot, "127.0.0.1:%d", f.port);
    trib_kclient_opts_t o;
    trib_kclient_opts_init(&o);
    o.bootstrap = boot;
    o.timeout_ms = 200;
    trib_kclient_t *c = (trib_kclient_t *)&o;
    trib_error_t err;
    trib_error_clear(&err);
    assert_int_equal(trib_kclient_open(&c, &o, &err), -ETIMEDOUT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "ApiVersions"));
    fake_stop(&f);

    /* Nobody listens on the port any more: refused, with the address named. */
    assert_true(trib_kclient_open(&c, &o, &err) < 0);
    assert_non_null(strstr(err.msg, boot));
    o.bootstrap = "nonsense";
    assert_int_equal(trib_kclient_open(&c, &o, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "HOST:PORT"));
}

static void warned(void *arg, const char *msg)
{
    snprintf(arg, 600, "%s", msg);
}

static const char *props_file(const char *text)
{
    static char path[] = "/tmp/trib-kclient-props-XXXXXX";
    strcpy(path, "/tmp/trib-kclient-props-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* --command-config's properties: both naming styles, JAAS, errors with FILE:LINE. */
static void test_security_properties(void **state)
{
    (void)state;
    trib_kclient_security_t s;
    trib_error_t err;
    char warning[600] = "";
    trib_kclient_security_init(&s);
    const char *path = props_file(
        "# Kafka's names\n"
        "  security.protocol = sasl_ssl  \n"
        "! another comment\n\n"
        "ssl.truststore.type=PEM\n"
        "ssl.truststore.location: /etc/ca.pem\n"
        "sasl.mechanism=scram-sha-256\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        "username=\"al\\\"ice\" password=\"p=w;\";\n"
        "ssl.endpoint.identification.algorithm=\n"
        "client.dns.lookup=use_all_dns_ips\n");
    trib_error_clear(&err);
    assert_int_equal(trib_kclient_security_load(&s, path, warned, warning, &err), 0);
    unlink(path);
    assert_int_equal(s.protocol, TRIB_KCLIENT_SASL_SSL);
    assert_string_equal(s.ca_location, "/etc/ca.pem");
    assert_string_equal(s.mechanism, "SCRAM-SHA-256");
    assert_string_equal(s.username, "al\"ice");
    assert_string_equal(s.password, "p=w;");
    assert_false(s.verify_hostname);
    assert_non_null(strstr(warning, ":10: unknown property 'client.dns.lookup'"));

    /* librdkafka's names, mTLS */
    trib_kclient_security_init(&s);
    path = props_file("security.protocol=SSL\nssl.ca.location=/ca\n"
                      "ssl.certificate.location=/c.pem\nssl.key.location=/c.key\n");
    assert_int_equal(trib_kclient_security_load(&s, path, NULL, NULL, &err), 0);
    unlink(path);
    assert_int_equal(s.protocol, TRIB_KCLIENT_SSL);
    assert_string_equal(s.cert_location, "/c.pem");
    assert_true(s.verify_hostname);

    static const struct {
        const char *text;
        int line;
        const char *what;
    } bad[] = {
        {"security.protocol=TLS\n", 1, "security.protocol"},
        {"\nsasl.mechanism=GSSAPI\n", 2, "sasl.mechanism"},
        {"just a line\n", 1, "key=value"},
        {"ssl.truststore.type=JKS\n", 1, "only PEM"},
        {"sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required;\n", 1,
         "PlainLoginModule"},
        {"ssl.endpoint.identification.algorithm=ldap\n", 1, "https"},
        {"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=a\n", 0,
         "sasl.password"},
        {"security.protocol=SASL_SSL\n", 0, "sasl.mechanism"},
        {"ssl.certificate.location=/c.pem\n", 0, "go together"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trib_kclient_security_init(&s);
        trib_error_clear(&err);
        path = props_file(bad[i].text);
        assert_int_equal(trib_kclient_security_load(&s, path, NULL, NULL, &err), -EINVAL);
        unlink(path);
        if (!strstr(err.msg, bad[i].what) || err.line != bad[i].line) {
            fprintf(stderr, "case %zu: line %d: %s\n", i, err.line, err.msg);
        }
        assert_non_null(strstr(err.msg, bad[i].what));
        assert_int_equal(err.line, bad[i].line);
    }
    trib_error_clear(&err);
    assert_int_equal(trib_kclient_security_load(&s, "/nonexistent/x.properties", NULL, NULL, &err),
                     -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_frame_roundtrip),
        cmocka_unit_test(test_conversation),
        cmocka_unit_test(test_timeout_and_refused),
        cmocka_unit_test(test_security_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
