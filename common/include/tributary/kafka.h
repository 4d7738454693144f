/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kafka protocol codec: primitive view types, the API table, the
 * request/response headers, and the descriptor tables the generated code
 * is made of.
 *
 * Messages. tools/codegen/kafka_codegen.py turns every schema in
 * ../shared/kafka-protocol/message/<Name>.json into a C struct holding the fields
 * of all its versions (common/kafka/gen/<Message>.h, all of them through
 * "kafka/gen/kafka_messages.h") and four functions:
 *
 *   void X_init(X *m);                       schema defaults
 *   int  X_decode(X *m, trib_slice_t *s, int16_t version, trib_arena_t *a);
 *   int  X_encode(const X *m, trib_buf_t *b, int16_t version);
 *   int  X_to_json(const X *m, int16_t version, trib_buf_t *out);
 *
 * They return 0 or a negative TRIB_E* / -errno code. The generated code is
 * table-driven: each struct has a constant descriptor (trib_kafka_struct_desc_t)
 * listing its fields with offset, type, versions, nullable and tagged
 * versions and default, and one engine in common/kafka/proto.c encodes,
 * decodes, initialises and prints any of them. That keeps the ~190 messages
 * small to compile and puts every hostile-input check in one place.
 *
 * C representation:
 *   int8..int64, uint16, uint32, float64, bool -> int8_t .. double, bool
 *   string       -> trib_kstr_t   {ptr, len}; len -1 = null; a view, not NUL-terminated
 *   bytes        -> trib_kbytes_t {ptr, len}; len -1 = null; a view
 *   records      -> trib_kbytes_t, the raw record set (zero-copy; see record.h)
 *   uuid         -> trib_uuid_t
 *   []T          -> struct { T *items; int32_t count; }; count -1 = null
 *   struct field -> embedded by value, or a pointer (NULL = null) when nullable
 *   nested structs are named <Message>_<StructName>, arrays of them
 *   <Message>_<StructName>_array.
 * Every struct of a message with flexible versions ends with
 * `trib_ktags_t unknown_tags`: tagged fields this codec does not know, kept
 * in wire order and written back on encode, so a decode/encode round trip is
 * byte-identical.
 *
 * Decoding. Decoded strings, bytes and records point into the input, which
 * must outlive the message; arrays, nullable structs and unknown tags are
 * allocated from the arena (required; its byte limit is the final bound on
 * hostile input). X_decode initialises the message first, so a failed
 * decode leaves a valid (partly filled) message behind. Fields
 * absent in the version get their defaults. Decode does not require the
 * slice to be consumed entirely: trailing bytes are left in it. Errors:
 *   TRIB_EUNSUPPORTED_VERSION  version outside validVersions
 *   TRIB_ETRUNCATED            input ends early (including any count or
 *                              length larger than the bytes remaining)
 *   TRIB_EMALFORMED            negative length other than null, null where the
 *                              version does not allow it, string over 32767
 *                              bytes, tagged fields not in ascending order or
 *                              not filling their declared size, bad varint
 *   TRIB_ETOO_LARGE            the arena's byte limit was reached
 *   -ENOMEM                    allocation failed
 *
 * Encoding. Strings and ordinary bytes are copied into the buffer; records
 * and "zeroCopy" bytes are appended by reference (trib_buf_append_ref), so
 * they must outlive every use of the buffer. Tagged fields are written only
 * when they differ from their default, as Kafka's Java code does. Errors:
 *   TRIB_EUNSUPPORTED_VERSION  version outside validVersions; a field absent in
 *                              this version holds a non-default value and is
 *                              not "ignorable" (Java's UnsupportedVersionException);
 *                              unknown tagged fields set on a non-flexible version
 *   TRIB_EMALFORMED            null in a field that is not nullable in this
 *                              version; string longer than 32767 bytes; unknown
 *                              tags not ascending or colliding with a known tag
 *   -ENOMEM                    from the buffer
 * On error the buffer holds a partial message: reset it.
 *
 * JSON (X_to_json). The contract the oracle tests rely on: one JSON object
 * with the fields present in that version, in schema order, keyed by the
 * schema field name (known tagged fields included when the version has them,
 * unknown tags omitted); integers as numbers; bool true/false; float64 as a
 * number (%.17g; null if not finite); strings as JSON strings or null
 * (", \ and control characters escaped, U+2028/U+2029 as \u2028/\u2029 so
 * the output is one line for any reader, invalid UTF-8 bytes as \ufffd,
 * other UTF-8 verbatim); bytes and records as
 * lowercase hex strings or null; uuid as 32 lowercase hex digits; arrays as
 * JSON arrays (of objects or of values) or null; structs as objects or null.
 * No whitespace is emitted; compare parsed values, not text.
 */
#ifndef TRIBUTARY_KAFKA_H
#define TRIBUTARY_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/slice.h"

/* ---- primitive views ---------------------------------------------------- */

/* A Kafka string: a view into the input (not NUL-terminated); len -1 = null. */
typedef struct trib_kstr {
    const char *ptr;
    int32_t len;
} trib_kstr_t;

/* Kafka bytes or records: a view; len -1 = null. */
typedef struct trib_kbytes {
    const uint8_t *ptr;
    int32_t len;
} trib_kbytes_t;

typedef struct trib_uuid {
    uint8_t b[16];
} trib_uuid_t;

/* Kafka's Uuid.toString() (kafka/uuid.c): URL-safe base64 without padding, 22 characters. */
void trib_uuid_format(const trib_uuid_t *id, char out[23]);
/* The 22 characters back; TRIB_EMALFORMED (out untouched) when not a canonical encoding. */
int trib_uuid_parse(const char *s, size_t len, trib_uuid_t *out);
bool trib_uuid_is_zero(const trib_uuid_t *id);

/* One tagged field kept raw: its tag and its data (without the size). */
typedef struct trib_ktag {
    uint32_t tag;
    trib_kbytes_t data;
} trib_ktag_t;

/* Unknown tagged fields, in ascending tag order. */
typedef struct trib_ktags {
    trib_ktag_t *items;
    int32_t count;
} trib_ktags_t;

/* Arrays of primitives. count -1 = null array. */
#define TRIB_KARRAY_(name, type)                                                                   \
    typedef struct name {                                                                          \
        type *items;                                                                               \
        int32_t count;                                                                             \
    } name##_t
TRIB_KARRAY_(trib_karr_bool, bool);
TRIB_KARRAY_(trib_karr_int8, int8_t);
TRIB_KARRAY_(trib_karr_int16, int16_t);
TRIB_KARRAY_(trib_karr_uint16, uint16_t);
TRIB_KARRAY_(trib_karr_int32, int32_t);
TRIB_KARRAY_(trib_karr_uint32, uint32_t);
TRIB_KARRAY_(trib_karr_int64, int64_t);
TRIB_KARRAY_(trib_karr_float64, double);
TRIB_KARRAY_(trib_karr_str, trib_kstr_t);
TRIB_KARRAY_(trib_karr_bytes, trib_kbytes_t);
TRIB_KARRAY_(trib_karr_uuid, trib_uuid_t);
/* Any array seen generically: every typed array has this layout. */
TRIB_KARRAY_(trib_karray, void);
#undef TRIB_KARRAY_

/* A view of a NUL-terminated string (NULL gives the null string). */
static inline trib_kstr_t trib_kstr(const char *nul_terminated)
{
    trib_kstr_t s = {nul_terminated, -1};
    if (nul_terminated) {
        s.len = (int32_t)strlen(nul_terminated);
    }
    return s;
}

static inline bool trib_kstr_is_null(trib_kstr_t s)
{
    return s.len < 0;
}

/* ---- codec and API tables ----------------------------------------------- */

struct trib_kafka_struct_desc;

/* One message type (a request, a response, a header or a data type). */
typedef struct trib_kafka_codec {
    const char *name; /* schema name: "ProduceRequest" */
    size_t size;      /* sizeof the message struct */
    void (*init)(void *m);
    int (*decode)(void *m, trib_slice_t *s, int16_t version, trib_arena_t *a);
    int (*encode)(const void *m, trib_buf_t *b, int16_t version);
    int (*to_json)(const void *m, int16_t version, trib_buf_t *out);
    int16_t min_version, max_version, first_flexible; /* -1 if none */
    /* The descriptor of the top-level struct, for generic tools (tests, fuzzing). */
    const struct trib_kafka_struct_desc *desc;
} trib_kafka_codec_t;

/* One API key: its request and response codecs. */
typedef struct trib_kafka_api {
    int16_t api_key;
    const char *name;                                 /* "Produce" */
    int16_t min_version, max_version, first_flexible; /* -1 if none */
    const trib_kafka_codec_t *request, *response;
} trib_kafka_api_t;

/* All APIs sorted by key, and all codecs sorted by name (generated). */
extern const trib_kafka_api_t trib_kafka_apis[];
extern const size_t trib_kafka_api_count;
extern const trib_kafka_codec_t *const trib_kafka_codecs[];
extern const size_t trib_kafka_codec_count;

/* NULL if the key is not a known API. */
const trib_kafka_api_t *trib_kafka_api_find(int16_t api_key);
/* By schema name ("ProduceRequest", "ConsumerProtocolAssignment"); NULL if unknown. */
const trib_kafka_codec_t *trib_kafka_codec_find(const char *name);

/* ---- request and response headers (hand-written, header.c) --------------- */

/*
 * Request header, by header version:
 *   v0: request_api_key int16, request_api_version int16, correlation_id int32
 *   v1: v0 + client_id (nullable STRING, never compact)
 *   v2: v1 + tagged fields
 * Response header: v0: correlation_id int32; v1: v0 + tagged fields.
 */
typedef struct trib_kafka_request_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    trib_kstr_t client_id; /* len -1 = null; null in header v0 */
    trib_ktags_t tags;     /* header v2 tagged fields, all kept raw */
} trib_kafka_request_header_t;

typedef struct trib_kafka_response_header {
    int32_t correlation_id;
    trib_ktags_t tags; /* header v1 tagged fields, kept raw */
} trib_kafka_response_header_t;

/*
 * Header version for an API version: flexible versions use request header
 * v2 and response header v1, others v1 and v0; ControlledShutdown v0 uses
 * request header v0 and ApiVersions responses always use header v0 (KIP-511).
 * Versions above the API's maximum follow its flexible rule (a client may
 * send a newer ApiVersions). -1 for an unknown API key or negative version.
 */
int16_t trib_kafka_request_header_version(int16_t api_key, int16_t api_version);
int16_t trib_kafka_response_header_version(int16_t api_key, int16_t api_version);

void trib_kafka_request_header_init(trib_kafka_request_header_t *h);
int trib_kafka_request_header_decode(trib_kafka_request_header_t *h, trib_slice_t *s,
                                     int16_t header_version, trib_arena_t *a);
int trib_kafka_request_header_encode(const trib_kafka_request_header_t *h, trib_buf_t *b,
                                     int16_t header_version);
/*
 * Reads api key and version, picks the header version with
 * trib_kafka_request_header_version() and decodes. *header_version (may be
 * NULL) receives it. TRIB_EUNSUPPORTED_VERSION for an unknown API key, with
 * api_key, api_version and correlation_id still filled in when present.
 */
int trib_kafka_request_header_parse(trib_kafka_request_header_t *h, trib_slice_t *s,
                                    trib_arena_t *a, int16_t *header_version);

void trib_kafka_response_header_init(trib_kafka_response_header_t *h);
int trib_kafka_response_header_decode(trib_kafka_response_header_t *h, trib_slice_t *s,
                                      int16_t header_version, trib_arena_t *a);
int trib_kafka_response_header_encode(const trib_kafka_response_header_t *h, trib_buf_t *b,
                                      int16_t header_version);

/* ---- descriptors (used by the generated code; proto.c) -------------------- */

typedef enum trib_kafka_type {
    TRIB_KAFKA_T_BOOL,
    TRIB_KAFKA_T_INT8,
    TRIB_KAFKA_T_INT16,
    TRIB_KAFKA_T_UINT16,
    TRIB_KAFKA_T_INT32,
    TRIB_KAFKA_T_UINT32,
    TRIB_KAFKA_T_INT64,
    TRIB_KAFKA_T_FLOAT64,
    TRIB_KAFKA_T_STRING,
    TRIB_KAFKA_T_BYTES,
    TRIB_KAFKA_T_RECORDS,
    TRIB_KAFKA_T_UUID,
    TRIB_KAFKA_T_STRUCT,
} trib_kafka_type_t;

/* Field flags. */
#define TRIB_KAFKA_F_ARRAY 0x01     /* []type: a trib_karray_t layout */
#define TRIB_KAFKA_F_NULLABLE 0x02  /* nullable in [nmin, nmax] */
#define TRIB_KAFKA_F_TAGGED 0x04    /* tagged (tag `tag`) from version tag_min */
#define TRIB_KAFKA_F_IGNORABLE 0x08 /* may be dropped silently in versions without it */
#define TRIB_KAFKA_F_DEFNULL 0x10   /* default is null (string, bytes, array, struct) */
#define TRIB_KAFKA_F_NOFLEX 0x20    /* never compact, even in flexible versions */
#define TRIB_KAFKA_F_REF 0x40       /* encoded by reference (records, zeroCopy bytes) */
#define TRIB_KAFKA_F_PTR 0x80       /* struct stored as a pointer (NULL = null) */

/* "N+" version ranges end here. */
#define TRIB_KV_MAX INT16_MAX
/* A struct's flex_min when the message has no flexible versions. */
#define TRIB_KV_NONE INT16_MAX

typedef struct trib_kafka_field {
    const char *name;   /* schema field name, the JSON key */
    uint32_t offset;    /* offsetof in the parent struct */
    uint8_t type;       /* trib_kafka_type_t of the value or of the array element */
    uint8_t flags;      /* TRIB_KAFKA_F_* */
    int16_t vmin, vmax; /* present in versions [vmin, vmax] */
    int16_t nmin, nmax; /* nullable in [nmin, nmax] if TRIB_KAFKA_F_NULLABLE */
    int16_t tag_min;    /* tagged from this version if TRIB_KAFKA_F_TAGGED */
    uint32_t tag;
    const struct trib_kafka_struct_desc *sub; /* TRIB_KAFKA_T_STRUCT */
    int64_t def_int;                          /* default of integer and bool fields */
    double def_float;                         /* default of float64 fields */
    const char *def_str;                      /* default of strings, unless DEFNULL; NULL = "" */
} trib_kafka_field_t;

typedef struct trib_kafka_struct_desc {
    const char *name;     /* C type name: "ProduceRequest_TopicProduceData" */
    uint32_t size;        /* sizeof the struct */
    uint32_t tags_offset; /* offsetof unknown_tags, if flex_min != TRIB_KV_NONE */
    int16_t flex_min;     /* first flexible version of the message */
    uint16_t nfields;
    uint16_t ntagged; /* fields with TRIB_KAFKA_F_TAGGED; in ascending tag order */
    const trib_kafka_field_t *fields;
} trib_kafka_struct_desc_t;

/* The versions of a top-level message. */
typedef struct trib_kafka_msg_desc {
    const trib_kafka_struct_desc_t *root;
    int16_t min_version, max_version;
} trib_kafka_msg_desc_t;

/* Shorthands used by the generated tables. */
#define TRIB_KF(type, field) .name = #field, .offset = offsetof(type, field)
#define TRIB_KS(type) .name = #type, .size = sizeof(type)
#define TRIB_KS_TAGS(type) TRIB_KS(type), .tags_offset = offsetof(type, unknown_tags)

/* The engine behind every generated X_init/X_decode/X_encode/X_to_json. */
void trib_kafka_struct_init(const trib_kafka_struct_desc_t *d, void *m);
int trib_kafka_msg_decode(const trib_kafka_msg_desc_t *md, void *m, trib_slice_t *s,
                          int16_t version, trib_arena_t *a);
int trib_kafka_msg_encode(const trib_kafka_msg_desc_t *md, const void *m, trib_buf_t *b,
                          int16_t version);
int trib_kafka_msg_to_json(const trib_kafka_msg_desc_t *md, const void *m, int16_t version,
                           trib_buf_t *out);

/* True if the field of struct m holds its schema default (Java's equals). */
bool trib_kafka_field_is_default(const trib_kafka_field_t *f, const void *m);
/* Bytes one value (one array element) of the field takes in memory. */
size_t trib_kafka_field_elem_size(const trib_kafka_field_t *f);
/* True if every field holds its default and no unknown tags are kept. */
bool trib_kafka_struct_is_default(const trib_kafka_struct_desc_t *d, const void *m);

/* ---- low-level helpers shared with header.c ------------------------------ */

/* Reads a tagged-field section into unknown tags (all tags kept raw). */
int trib_kafka_tags_decode(trib_ktags_t *t, trib_slice_t *s, trib_arena_t *a);
/* Writes a tagged-field section holding only the given raw tags. */
int trib_kafka_tags_encode(const trib_ktags_t *t, trib_buf_t *b);
/* Nullable STRING (int16 length) or COMPACT_NULLABLE_STRING. */
int trib_kafka_str_decode(trib_kstr_t *out, trib_slice_t *s, bool compact, bool nullable);
int trib_kafka_str_encode(trib_kstr_t v, trib_buf_t *b, bool compact, bool nullable);
/* Appends s as a JSON string (or null). */
void trib_kafka_json_str(trib_buf_t *out, const char *p, int32_t len);

#endif
