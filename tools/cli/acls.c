/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary acls create|list|delete: ACLs with Kafka's model, through
 * CreateAcls (key 30), DescribeAcls (29) and DeleteAcls (31), with the
 * options of Kafka's kafka-acls.sh (--topic, --group, --cluster,
 * --transactional-id, --resource-pattern-type, --allow-principal,
 * --deny-principal, --operation, --host).
 */
#include <ctype.h>
#include <getopt.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "tributary/kafka_error.h"

#include "kafka/gen/CreateAclsRequest.h"
#include "kafka/gen/CreateAclsResponse.h"
#include "kafka/gen/DeleteAclsRequest.h"
#include "kafka/gen/DeleteAclsResponse.h"
#include "kafka/gen/DescribeAclsRequest.h"
#include "kafka/gen/DescribeAclsResponse.h"

#define API_DESCRIBE_ACLS 29
#define API_CREATE_ACLS 30
#define API_DELETE_ACLS 31
#define MAX_OPS 16

static const char *const type_names[] = {"Unknown", "Any",     "Topic",
                                         "Group",   "Cluster", "TransactionalId"};
static const char *const pattern_names[] = {"Unknown", "Any", "Match", "Literal", "Prefixed"};
static const char *const op_names[] = {
    "Unknown",        "Any",   "All",      "Read",          "Write",           "Create",
    "Delete",         "Alter", "Describe", "ClusterAction", "DescribeConfigs", "AlterConfigs",
    "IdempotentWrite"};
static const char *const perm_names[] = {"Unknown", "Any", "Deny", "Allow"};

#define NAMEOF(tab, v) ((v) >= 0 && (size_t)(v) < sizeof(tab) / sizeof(tab[0]) ? tab[v] : "?")

/* "describe-configs", "DESCRIBE_CONFIGS", "DescribeConfigs": the index in tab, or -1. */
static int parse_name(const char *const *tab, size_t n, const char *s)
{
    char want[64];
    size_t k = 0;
    for (const char *p = s; *p && k + 1 < sizeof(want); p++) {
        if (*p != '-' && *p != '_') {
            want[k++] = (char)tolower((unsigned char)*p);
        }
    }
    want[k] = '\0';
    for (size_t i = 2; i < n; i++) {
        if (strcasecmp(tab[i], want) == 0) {
            return (int)i;
        }
    }
    return strcasecmp(want, "any") == 0 ? 1 : -1;
}
#define PARSE(tab, s) parse_name(tab, sizeof(tab) / sizeof(tab[0]), s)

static void usage(FILE *out)
{
    fputs("Usage:\n"
          "  tributary acls create RESOURCE (--allow-principal P | --deny-principal P)\n"
          "                        --operation OP [--operation OP...] [--host H]\n"
          "                        [--resource-pattern-type literal|prefixed]\n"
          "  tributary acls list   [RESOURCE] [--principal P] [--operation OP] [--host H]\n"
          "                        [--permission allow|deny]\n"
          "                        [--resource-pattern-type any|match|literal|prefixed]\n"
          "  tributary acls delete [the filters of list; at least one]\n"
          "\n"
          "ACLs with Kafka's model (CreateAcls, DescribeAcls, DeleteAcls).\n"
          "  RESOURCE  --topic NAME, --group NAME, --cluster or --transactional-id NAME\n"
          "            (NAME * with a literal pattern: every resource of the type)\n"
          "  P         a principal, User:NAME (User:* is everyone)\n"
          "  OP        all, read, write, create, delete, alter, describe, cluster-action,\n"
          "            describe-configs, alter-configs, idempotent-write\n"
          "  H         a client address, or * (the default) for any\n"
          "  --resource-pattern-type  literal (create's default) or prefixed; list and\n"
          "            delete also take any (their default) and match (the ACLs that\n"
          "            apply to the named resource)\n"
          "\n"
          "list prints one ACL a line: TYPE PATTERN NAME PRINCIPAL HOST OPERATION PERMISSION,\n"
          "tab-separated. delete prints the ACLs it removed, the same way.\n"
          "\n"
          "Common options: --bootstrap HOST:PORT, --request-timeout-ms N, --verbose,\n"
          "  --command-config FILE (TLS and SASL; see tributary --help).\n",
          out);
}

typedef struct acl_opts {
    int type;
    const char *name;
    int pattern;
    const char *principal;
    int perm;
    int ops[MAX_OPS];
    int nops;
    const char *host;
    bool any_filter;
} acl_opts_t;

static void print_acl(int8_t type, trib_kstr_t name, int8_t pattern, trib_kstr_t principal,
                      trib_kstr_t host, int8_t op, int8_t perm)
{
    printf("%s\t%s\t%.*s\t%.*s\t%.*s\t%s\t%s\n", NAMEOF(type_names, type),
           NAMEOF(pattern_names, pattern), (int)(name.len > 0 ? name.len : 0), name.ptr,
           (int)(principal.len > 0 ? principal.len : 0), principal.ptr,
           (int)(host.len > 0 ? host.len : 0), host.ptr, NAMEOF(op_names, op),
           NAMEOF(perm_names, perm));
}

static int16_t version_of(trib_kclient_t *c, int16_t key, const char *api)
{
    int16_t v = trib_kclient_version(c, key, 0, 3);
    if (v < 0) {
        cli_errorf("the broker does not support %s", api);
    }
    return v;
}

static int create(trib_kclient_t *c, const acl_opts_t *o, trib_arena_t *arena)
{
    int16_t v = version_of(c, API_CREATE_ACLS, "CreateAcls");
    if (v < 0) {
        return CLI_EKAFKA;
    }
    CreateAclsRequest req;
    CreateAclsRequest_init(&req);
    CreateAclsRequest_AclCreation cr[MAX_OPS];
    for (int i = 0; i < o->nops; i++) {
        CreateAclsRequest_AclCreation_init(&cr[i]);
        cr[i].ResourceType = (int8_t)o->type;
        cr[i].ResourceName = trib_kstr(o->name);
        cr[i].ResourcePatternType = (int8_t)o->pattern;
        cr[i].Principal = trib_kstr(o->principal);
        cr[i].Host = trib_kstr(o->host ? o->host : "*");
        cr[i].Operation = (int8_t)o->ops[i];
        cr[i].PermissionType = (int8_t)o->perm;
    }
    req.Creations.items = cr;
    req.Creations.count = o->nops;
    CreateAclsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_CREATE_ACLS, v, &req, &resp, arena, &err) < 0) {
        return cli_fail(&err);
    }
    int status = CLI_OK;
    for (int32_t i = 0; i < resp.Results.count && i < o->nops; i++) {
        const CreateAclsResponse_AclCreationResult *r = &resp.Results.items[i];
        if (r->ErrorCode != 0) {
            status = cli_kafka_fail(r->ErrorCode, r->ErrorMessage, "CreateAcls %s",
                                    NAMEOF(op_names, o->ops[i]));
            continue;
        }
        print_acl((int8_t)o->type, trib_kstr(o->name), (int8_t)o->pattern, trib_kstr(o->principal),
                  trib_kstr(o->host ? o->host : "*"), (int8_t)o->ops[i], (int8_t)o->perm);
    }
    return status;
}

static int list(trib_kclient_t *c, const acl_opts_t *o, trib_arena_t *arena)
{
    int16_t v = version_of(c, API_DESCRIBE_ACLS, "DescribeAcls");
    if (v < 0) {
        return CLI_EKAFKA;
    }
    DescribeAclsRequest req;
    DescribeAclsRequest_init(&req);
    req.ResourceTypeFilter = (int8_t)o->type;
    req.ResourceNameFilter = trib_kstr(o->name);
    req.PatternTypeFilter = (int8_t)o->pattern;
    req.PrincipalFilter = trib_kstr(o->principal);
    req.HostFilter = trib_kstr(o->host);
    req.Operation = (int8_t)(o->nops ? o->ops[0] : 1);
    req.PermissionType = (int8_t)o->perm;
    DescribeAclsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_DESCRIBE_ACLS, v, &req, &resp, arena, &err) <
        0) {
        return cli_fail(&err);
    }
    if (resp.ErrorCode != 0) {
        return cli_kafka_fail(resp.ErrorCode, resp.ErrorMessage, "DescribeAcls");
    }
    for (int32_t i = 0; i < resp.Resources.count; i++) {
        const DescribeAclsResponse_DescribeAclsResource *r = &resp.Resources.items[i];
        for (int32_t k = 0; k < r->Acls.count; k++) {
            const DescribeAclsResponse_AclDescription *a = &r->Acls.items[k];
            print_acl(r->ResourceType, r->ResourceName, r->PatternType, a->Principal, a->Host,
                      a->Operation, a->PermissionType);
        }
    }
    return CLI_OK;
}

static int del(trib_kclient_t *c, const acl_opts_t *o, trib_arena_t *arena)
{
    int16_t v = version_of(c, API_DELETE_ACLS, "DeleteAcls");
    if (v < 0) {
        return CLI_EKAFKA;
    }
    DeleteAclsRequest req;
    DeleteAclsRequest_init(&req);
    DeleteAclsRequest_DeleteAclsFilter f[MAX_OPS];
    int n = o->nops ? o->nops : 1;
    for (int i = 0; i < n; i++) {
        DeleteAclsRequest_DeleteAclsFilter_init(&f[i]);
        f[i].ResourceTypeFilter = (int8_t)o->type;
        f[i].ResourceNameFilter = trib_kstr(o->name);
        f[i].PatternTypeFilter = (int8_t)o->pattern;
        f[i].PrincipalFilter = trib_kstr(o->principal);
        f[i].HostFilter = trib_kstr(o->host);
        f[i].Operation = (int8_t)(o->nops ? o->ops[i] : 1);
        f[i].PermissionType = (int8_t)o->perm;
    }
    req.Filters.items = f;
    req.Filters.count = n;
    DeleteAclsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_DELETE_ACLS, v, &req, &resp, arena, &err) < 0) {
        return cli_fail(&err);
    }
    int status = CLI_OK;
    for (int32_t i = 0; i < resp.FilterResults.count; i++) {
        const DeleteAclsResponse_DeleteAclsFilterResult *r = &resp.FilterResults.items[i];
        if (r->ErrorCode != 0) {
            status = cli_kafka_fail(r->ErrorCode, r->ErrorMessage, "DeleteAcls");
            continue;
        }
        for (int32_t k = 0; k < r->MatchingAcls.count; k++) {
            const DeleteAclsResponse_DeleteAclsMatchingAcl *m = &r->MatchingAcls.items[k];
            if (m->ErrorCode != 0) {
                status = cli_kafka_fail(m->ErrorCode, m->ErrorMessage, "DeleteAcls");
                continue;
            }
            print_acl(m->ResourceType, m->ResourceName, m->PatternType, m->Principal, m->Host,
                      m->Operation, m->PermissionType);
        }
    }
    return status;
}

static int set_resource(acl_opts_t *o, int type, const char *name)
{
    if (o->type != 1) {
        cli_errorf("one resource (--topic, --group, --cluster or --transactional-id) at most");
        return -1;
    }
    o->type = type;
    o->name = name;
    o->any_filter = true;
    return 0;
}

int cli_acls(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EUSAGE : CLI_OK;
    }
    const char *action = argv[1];
    bool is_create = !strcmp(action, "create");
    if (!is_create && strcmp(action, "list") && strcmp(action, "delete")) {
        cli_errorf("unknown acls action '%s'", action);
        usage(stderr);
        return CLI_EUSAGE;
    }
    enum {
        O_TOPIC = 1,
        O_GROUP,
        O_CLUSTER,
        O_TXN,
        O_PATTERN,
        O_ALLOW,
        O_DENY,
        O_PRINCIPAL,
        O_OP,
        O_HOST,
        O_PERM
    };
    static const struct option opts[] = {
        {"topic", required_argument, NULL, O_TOPIC},
        {"group", required_argument, NULL, O_GROUP},
        {"cluster", no_argument, NULL, O_CLUSTER},
        {"transactional-id", required_argument, NULL, O_TXN},
        {"resource-pattern-type", required_argument, NULL, O_PATTERN},
        {"allow-principal", required_argument, NULL, O_ALLOW},
        {"deny-principal", required_argument, NULL, O_DENY},
        {"principal", required_argument, NULL, O_PRINCIPAL},
        {"operation", required_argument, NULL, O_OP},
        {"host", required_argument, NULL, O_HOST},
        {"permission", required_argument, NULL, O_PERM},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    cli_common_t common;
    cli_common_init(&common);
    acl_opts_t o = {.type = 1, .pattern = 0, .perm = 1};
    optind = 1;
    int ch;
    argc--;
    argv++;
    while ((ch = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
        int r = cli_common_opt(&common, ch, optarg);
        if (r < 0) {
            return CLI_EUSAGE;
        }
        if (r > 0) {
            continue;
        }
        int v;
        switch (ch) {
        case O_TOPIC:
        case O_GROUP:
        case O_TXN:
            if (set_resource(&o, ch == O_TOPIC ? 2 : ch == O_GROUP ? 3 : 5, optarg) != 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_CLUSTER:
            if (set_resource(&o, 4, "kafka-cluster") != 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_PATTERN:
            v = PARSE(pattern_names, optarg);
            if (v < 1) {
                cli_errorf("--resource-pattern-type: any, match, literal or prefixed, not '%s'",
                           optarg);
                return CLI_EUSAGE;
            }
            o.pattern = v;
            break;
        case O_ALLOW:
        case O_DENY:
        case O_PRINCIPAL:
            if (o.principal) {
                cli_errorf("one principal at most");
                return CLI_EUSAGE;
            }
            o.principal = optarg;
            o.perm = ch == O_ALLOW ? 3 : ch == O_DENY ? 2 : o.perm;
            o.any_filter = true;
            break;
        case O_OP:
            v = PARSE(op_names, optarg);
            if (v < 1 || o.nops == MAX_OPS) {
                cli_errorf("--operation: unknown operation '%s' (or more than %d)", optarg,
                           MAX_OPS);
                return CLI_EUSAGE;
            }
            o.ops[o.nops++] = v;
            o.any_filter = true;
            break;
        case O_HOST:
            o.host = optarg;
            o.any_filter = true;
            break;
        case O_PERM:
            v = PARSE(perm_names, optarg);
            if (v < 1) {
                cli_errorf("--permission: allow or deny, not '%s'", optarg);
                return CLI_EUSAGE;
            }
            o.perm = v;
            o.any_filter = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            usage(stderr);
            return CLI_EUSAGE;
        }
    }
    if (optind < argc) {
        cli_errorf("acls %s: unexpected argument '%s'", action, argv[optind]);
        return CLI_EUSAGE;
    }
    if (is_create) {
        if (o.type == 1 || !o.principal || (o.perm != 2 && o.perm != 3) || o.nops == 0) {
            cli_errorf("acls create needs a resource, --allow-principal or --deny-principal, "
                       "and --operation");
            return CLI_EUSAGE;
        }
        if (o.pattern == 0) {
            o.pattern = 3;
        }
        if (o.pattern != 3 && o.pattern != 4) {
            cli_errorf("acls create: --resource-pattern-type is literal or prefixed");
            return CLI_EUSAGE;
        }
        for (int i = 0; i < o.nops; i++) {
            if (o.ops[i] == 1) {
                cli_errorf("acls create: --operation any is a filter, not an operation");
                return CLI_EUSAGE;
            }
        }
    } else {
        if (o.pattern == 0) {
            o.pattern = 1;
        }
        if (o.nops > 1 && strcmp(action, "list") == 0) {
            cli_errorf("acls list takes one --operation");
            return CLI_EUSAGE;
        }
        if (!strcmp(action, "delete") && !o.any_filter) {
            cli_errorf("acls delete needs at least one filter (a resource, --principal, "
                       "--operation, --host or --permission)");
            return CLI_EUSAGE;
        }
    }
    trib_kclient_t *c;
    int rc = cli_connect(&c, &common);
    if (rc != CLI_OK) {
        return rc;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    if (is_create) {
        rc = create(c, &o, &arena);
    } else if (!strcmp(action, "list")) {
        rc = list(c, &o, &arena);
    } else {
        rc = del(c, &o, &arena);
    }
    trib_arena_fini(&arena);
    trib_kclient_close(c);
    return rc;
}
