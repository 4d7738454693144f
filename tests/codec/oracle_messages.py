#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""
An independent oracle for the generated Kafka message codecs.

kafka-python (Debian's python3-kafka 2.0.2) carries its own, hand-written
definition of the non-flexible versions of about 25 APIs: one class per
(API, version, direction) with API_KEY, API_VERSION and a SCHEMA built from
Int8/Int16/Int32/Int64/String/Bytes/Boolean/Array/Schema type objects. For
every such class this script

  1. aligns kafka-python's schema, field by field and by POSITION, with the
     official JSON schema (../shared/kafka-protocol/message/*.json) at that
     version — the names differ, the wire layout must not. A disagreement is a
     finding; where kafka-python is the one that is wrong, it is listed in
     KNOWN_DIFFERENCES with the reason and the combination is skipped;
  2. builds several messages with non-trivial values driven by the schema
     (nested arrays of several elements, negative and extreme integers,
     empty, non-ASCII and escape-needing strings, nulls where the official
     schema allows them, raw bytes, real record batches built with
     kafka-python's record builders) and encodes them with kafka-python;
  3. feeds the bytes to kcodec_tool, which decodes them with our generated
     codec, prints to_json() and re-encodes, and checks that
       (a) decoding succeeded,
       (b) the re-encoded bytes are identical to kafka-python's,
       (c) the JSON values equal kafka-python's values, compared by position
           (kafka-python's schema order against the JSON object's order,
           recursively), and the JSON keys are the official field names;
  4. derives bodies from one message per combination that the decoder must
     reject: every strict prefix (a sample past 400 bytes), null (-1) in
     each string/bytes/array field the version does not allow to be null,
     length -2 in each non-nullable one, and array counts of 0x7fffffff /
     string lengths of 0x7fff that run past the end.

Tool protocol, one line each way:
    in:  <request|response> <api_key> <version> <hex body, may be empty>
    out: {"ok":true,"json":{...},"reencoded":"<hex>"}
         {"ok":false,"error":"<trib_strerror text>"}

Exit status: 0 when everything passed, 1 on any failure, 77 (a ctest skip)
when kafka-python or the official schemas are not available. The last line
printed is always "N passed, M failed".
"""

import argparse
import importlib
import inspect
import json
import os
import pkgutil
import random
import re
import subprocess
import sys

SKIP = 77

try:
    import kafka
    import kafka.protocol
    from kafka.protocol.api import Request, Response
    from kafka.protocol.types import (Array, Boolean, Bytes, Int8, Int16, Int32,
                                      Int64, Schema, String)
    from kafka.record.memory_records import MemoryRecordsBuilder
except ImportError as e:  # pragma: no cover - depends on the host
    print("oracle_messages: SKIP: kafka-python is not importable (%s); run me with "
          "/usr/bin/python3 and python3-kafka installed" % e)
    print("0 passed, 0 failed")
    sys.exit(SKIP)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SCHEMAS = os.path.normpath(
    os.path.join(REPO, "..", "shared", "kafka-protocol", "message"))

# (api_key, direction, version) -> why the combination is not tested.
#
# Only differences where kafka-python is wrong and the official schema is
# right belong here: each entry was checked by hand against
# message/*.json. An entry that stops applying (the schemas align again) is
# reported as a failure, so the table cannot go stale silently.
KNOWN_DIFFERENCES = {
    (0, "response", 8):
        "kafka-python's ProduceResponse_v8 lacks PartitionResponses[]."
        "RecordErrors and .ErrorMessage, which ProduceResponse.json adds in v8 "
        "(KIP-467)",
    (2, "request", 4):
        "kafka-python declares Partitions[].current_leader_epoch as Int64; "
        "ListOffsetsRequest.json has CurrentLeaderEpoch int32 (4+, KIP-320)",
    (2, "request", 5):
        "kafka-python declares Partitions[].current_leader_epoch as Int64; "
        "ListOffsetsRequest.json has CurrentLeaderEpoch int32 (4+, KIP-320)",
    (10, "response", 1):
        "kafka-python's GroupCoordinatorResponse_v1 lacks ThrottleTimeMs, the "
        "first field of FindCoordinatorResponse.json from v1",
    (15, "response", 3):
        "kafka-python's DescribeGroupsResponse_v3 lacks Groups[]."
        "AuthorizedOperations (int32, 3+, KIP-430)",
    (29, "request", 2):
        "kafka-python gives DescribeAclsRequest_v2 the non-flexible v1 "
        "schema; v2 is DescribeAcls' first flexible version (compact "
        "strings and arrays, tagged fields)",
    (29, "response", 2):
        "kafka-python gives DescribeAclsResponse_v2 the non-flexible v1 "
        "schema; v2 is DescribeAcls' first flexible version (compact "
        "strings and arrays, tagged fields)",
    (32, "response", 1):
        "kafka-python's DescribeConfigsResponse_v1 has Configs[].is_default "
        "(Boolean) where DescribeConfigsResponse.json has ConfigSource (int8, "
        "1+; IsDefault is v0 only): same width, but sources 2..6 do not fit a "
        "Boolean",
}

# kafka-python classes whose API_VERSION attribute contradicts the version in
# their name; the schema is tested under the version it actually describes.
# (class name) -> reason. Anything not listed here is reported as a failure.
KNOWN_MISNUMBERED = {
    "ListGroupsRequest_v2":
        "kafka-python 2.0.2 sets API_VERSION = 1 on ListGroupsRequest_v2 (a "
        "copy-paste slip); its empty SCHEMA is the official v2 body "
        "(ListGroupsRequest.json: no fields before v4), so it is tested as v2",
}

PRIMITIVES = {"bool", "int8", "int16", "uint16", "int32", "uint32", "int64",
              "float64", "string", "bytes", "records", "uuid"}

INT_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
}

# kafka-python type -> the official types with the same wire layout.
KP_COMPATIBLE = {
    "int8": {"int8"},
    "int16": {"int16"},
    "int32": {"int32"},
    "int64": {"int64"},
    "bool": {"bool"},
    "string": {"string"},
    "bytes": {"bytes", "records"},
}


# --------------------------------------------------------------------------
# The official schemas
# --------------------------------------------------------------------------

def strip_json_comments(text):
    """Removes // and /* */ comments outside JSON strings."""
    out = []
    i, n, in_str = 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Versions:
    """A version range as the schemas spell it: "none", "3", "3+", "0-2"."""

    def __init__(self, spec):
        spec = (spec or "none").strip()
        if spec == "none":
            self.lo, self.hi = 1, 0
        elif spec.endswith("+"):
            self.lo, self.hi = int(spec[:-1]), 0x7FFF
        elif "-" in spec:
            lo, hi = spec.split("-", 1)
            self.lo, self.hi = int(lo), int(hi)
        else:
            self.lo = self.hi = int(spec)

    def __contains__(self, v):
        return self.lo <= v <= self.hi


class OField:
    """One official field (or array element) as present in one version."""

    def __init__(self, name, kind, nullable=False, elem=None, fields=None,
                 type_name=None):
        self.name = name          # schema field name (None for an element)
        self.kind = kind          # a primitive, "array" or "struct"
        self.nullable = nullable
        self.elem = elem          # OField of the elements of an array
        self.fields = fields      # [OField] of a struct
        self.type_name = type_name

    def describe(self):
        if self.kind == "array":
            return "[]" + self.elem.describe()
        if self.kind == "struct":
            return "%s{%s}" % (self.type_name,
                               ", ".join("%s:%s" % (f.name, f.describe())
                                         for f in self.fields))
        return self.kind


class OfficialSchemas:
    def __init__(self, directory):
        self.directory = directory
        self.messages = {}  # (api_key, "request"|"response") -> spec
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                spec = json.loads(strip_json_comments(f.read()))
            if spec.get("type") in ("request", "response"):
                spec["_file"] = name
                self.messages[(spec["apiKey"], spec["type"])] = spec

    def get(self, api_key, direction):
        return self.messages.get((api_key, direction))

    @staticmethod
    def fields_at(spec, version):
        common = {s["name"]: s for s in spec.get("commonStructs", [])}
        return _resolve_fields(spec.get("fields", []), version, common)


def _resolve_fields(fields, version, common):
    out = []
    for f in fields:
        if version not in Versions(f.get("versions")):
            continue
        if "taggedVersions" in f and version in Versions(f["taggedVersions"]):
            continue  # tagged: not part of the fixed layout
        out.append(_resolve_type(f["name"], f["type"], f, version, common,
                                 version in Versions(f.get("nullableVersions"))))
    return out


def _resolve_type(name, type_name, f, version, common, nullable):
    if type_name.startswith("[]"):
        elem = _resolve_type(None, type_name[2:], f, version, common, False)
        return OField(name, "array", nullable, elem=elem, type_name=type_name)
    if type_name in PRIMITIVES:
        return OField(name, type_name, nullable, type_name=type_name)
    sub = f.get("fields")
    if sub is None:
        sub = common[type_name]["fields"]
    return OField(name, "struct", nullable,
                  fields=_resolve_fields(sub, version, common),
                  type_name=type_name)


# --------------------------------------------------------------------------
# kafka-python's classes
# --------------------------------------------------------------------------

class Combo:
    """One (API, version, direction) kafka-python implements."""

    def __init__(self, cls, direction, version):
        self.cls = cls
        self.api_key = cls.API_KEY
        self.direction = direction
        self.version = version
        self.api_name = None   # official name, set once aligned
        self.tree = None       # aligned ANode of the whole body
        self.skip = None       # reason, when not tested
        self.notes = []        # kafka-python bugs worked around

    @property
    def key(self):
        return (self.api_key, self.direction, self.version)

    def label(self):
        name = self.api_name or self.cls.__name__.rsplit("_v", 1)[0]
        return "%s(%d) %s v%d" % (name, self.api_key, self.direction,
                                  self.version)


def kafka_python_combos(problems):
    """Every Request/Response class in kafka.protocol, one per combination."""
    found = {}
    for mod_info in pkgutil.iter_modules(kafka.protocol.__path__):
        mod = importlib.import_module("kafka.protocol." + mod_info.name)
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if cls in (Request, Response) or cls.__module__ != mod.__name__:
                continue
            if not issubclass(cls, (Request, Response)):
                continue
            if not isinstance(getattr(cls, "API_VERSION", None), int):
                continue
            direction = "request" if issubclass(cls, Request) else "response"
            version = cls.API_VERSION
            m = re.search(r"_v(\d+)$", name)
            if m and int(m.group(1)) != version:
                if name in KNOWN_MISNUMBERED:
                    version = int(m.group(1))
                else:
                    problems.append(
                        "kafka-python class %s has API_VERSION %d: not in "
                        "KNOWN_MISNUMBERED" % (name, cls.API_VERSION))
            key = (cls.API_KEY, direction, version)
            if key in found and found[key].cls is not cls:
                problems.append("kafka-python defines %s twice (%s and %s)" % (
                    key, found[key].cls.__name__, name))
                continue
            found[key] = Combo(cls, direction, version)
    return [found[k] for k in sorted(found)]


# --------------------------------------------------------------------------
# Alignment of kafka-python's schema with the official one
# --------------------------------------------------------------------------

class AlignError(Exception):
    pass


class ANode:
    """A kafka-python type paired with the official field it encodes."""

    def __init__(self, kind, kp_type, ofield, children=None, elem=None):
        self.kind = kind        # int8..int64, bool, string, bytes, records,
                                # array, struct, or wrap (a primitive element
                                # that the official schema wraps in a
                                # one-field struct)
        self.kp_type = kp_type
        self.ofield = ofield
        self.children = children or []
        self.elem = elem

    @property
    def nullable(self):
        return self.ofield is not None and self.ofield.nullable


def kp_kind(t):
    if isinstance(t, String) or t is String:
        return "string"
    if isinstance(t, Array):
        return "array"
    if isinstance(t, Schema):
        return "struct"
    for cls, kind in ((Int8, "int8"), (Int16, "int16"), (Int32, "int32"),
                      (Int64, "int64"), (Boolean, "bool"), (Bytes, "bytes")):
        if t is cls or isinstance(t, cls):
            return kind
    return "unknown(%r)" % (t,)


def kp_describe(t):
    k = kp_kind(t)
    if k == "array":
        return "Array(%s)" % kp_describe(t.array_of)
    if k == "struct":
        return "{%s}" % ", ".join("%s:%s" % (n, kp_describe(f))
                                  for n, f in zip(t.names, t.fields))
    return k


def kp_width(t):
    """Official fields a kafka-python field covers: an inline Schema (not in
    an Array) is a group of consecutive fields on the wire."""
    if kp_kind(t) == "struct":
        return sum(kp_width(f) for f in t.fields)
    return 1


def align_struct(schema, ofields, path, notes):
    kp = list(zip(schema.names, schema.fields))
    if sum(kp_width(t) for _, t in kp) != len(ofields):
        raise AlignError(
            "%s: kafka-python has %d fields (%s), the official schema %d (%s)"
            % (path or "<body>", len(kp), ", ".join(
                "%s:%s" % (n, kp_describe(t)) for n, t in kp), len(ofields),
               ", ".join("%s:%s" % (f.name, f.describe()) for f in ofields)))
    children = []
    i = 0
    for name, t in kp:
        of = ofields[i]
        if kp_kind(t) == "struct" and of.kind != "struct":
            # kafka-python nests fields the official schema keeps flat
            # (CreatePartitions' new_partitions): same bytes.
            w = kp_width(t)
            node = align_struct(t, ofields[i:i + w], path, notes)
            node.kind = "group"
            children.append(node)
            i += w
            continue
        children.append(align_one(t, of, "%s%s" % (path + "." if path else "",
                                                   of.name), name, notes))
        i += 1
    return ANode("struct", schema, None, children=children)


def align_one(t, of, path, kp_name, notes):
    k = kp_kind(t)
    if k == "array" and of.kind == "array":
        elem = align_elem(t.array_of, of.elem, path + "[]", notes)
        return ANode("array", t, of, elem=elem)
    if k == "struct" and of.kind == "struct":
        node = align_struct(t, of.fields, path, notes)
        node.ofield = of
        return node
    if k in KP_COMPATIBLE and of.kind in KP_COMPATIBLE[k]:
        if t is String:
            # The class where an instance belongs: kafka-python itself
            # cannot encode such a field (String.encode() misses 'value').
            notes.append("%s is declared as the String class, not "
                         "String('utf-8'): kafka-python raises TypeError "
                         "encoding it, so this oracle encodes a copy of the "
                         "schema with String('utf-8') there" % path)
            t = String("utf-8")
        return ANode(of.kind if of.kind == "records" else k, t, of)
    raise AlignError("%s: kafka-python field %r is %s, the official field is %s"
                     % (path, kp_name, kp_describe(t), of.describe()))


def align_elem(t, of, path, notes):
    k = kp_kind(t)
    if k == "struct" and of.kind == "struct":
        return align_struct(t, of.fields, path, notes)
    if of.kind == "struct" and k != "struct" and len(of.fields) == 1:
        # Official []Struct{Name:string} vs kafka-python Array(String), or
        # []Struct{BrokerIds:[]int32} vs Array(Array(Int32)): the same bytes;
        # to_json shows an object of one field.
        inner = align_one(t, of.fields[0], path + "." + of.fields[0].name,
                          "<element>", notes)
        return ANode("wrap", t, of, children=[inner])
    if k in KP_COMPATIBLE and of.kind in KP_COMPATIBLE[k]:
        return align_one(t, of, path, "<element>", notes)
    raise AlignError("%s: kafka-python elements are %s, official elements %s"
                     % (path, kp_describe(t), of.describe()))


def kp_schema_of(node):
    """kafka-python type objects rebuilt from an aligned tree (repaired where
    a note says so); Schema.encode and friends are kafka-python's own."""
    k = node.kind
    if k in ("struct", "group"):
        return Schema(*[("f%d" % i, kp_schema_of(c))
                        for i, c in enumerate(node.children)])
    if k == "wrap":
        return kp_schema_of(node.children[0])
    if k == "array":
        return Array(kp_schema_of(node.elem))
    return node.kp_type


def encode_body(combo, values):
    if combo.notes:
        return kp_schema_of(combo.tree).encode(values)
    # Keep a reference: Struct.encode is a WeakMethod of the instance.
    obj = combo.cls(*values)
    return obj.encode()


# --------------------------------------------------------------------------
# Message values
# --------------------------------------------------------------------------

RICH_STRINGS = [
    "topic-a",
    "",
    "gr\u00fc\u00dfe-\u65e5\u672c-\U0001F600",
    'quote" back\\slash tab\t nl\n cr\r ctl\x01\x1f del\x7f',
    "x" * 200,
    "/slash <lt> &amp; \u2028",
]

INTERESTING = [-1, 0, 1, 7, -2, 127, -128, 255, 32767, -32768, 65535,
               2147483647, -2147483648, 1 << 40, -(1 << 53) - 1,
               (1 << 63) - 1, -(1 << 63)]

# Variants: each builds one message per combination.
VARIANTS = ["rich", "empty", "nulls", "extremes", "gzip"] + \
    ["random%d" % i for i in range(6)]


class Gen:
    def __init__(self, combo, variant, seed):
        self.combo = combo
        self.variant = variant
        self.rng = random.Random("%s/%s/%d" % (combo.key, variant, seed))
        self.counter = 0

    def value(self, node, depth=0):
        v, k = self.variant, node.kind
        rng = self.rng
        self.counter += 1
        if k in INT_RANGES:
            lo, hi = INT_RANGES[k]
            if v == "empty":
                return 0
            if v == "nulls":
                return -1
            if v == "extremes":
                return lo if self.counter % 2 else hi
            if v in ("rich", "gzip"):
                cands = [x for x in INTERESTING if lo <= x <= hi]
                return cands[self.counter % len(cands)]
            r = rng.random()
            if r < 0.4:
                return rng.randint(lo, hi)
            if r < 0.8:
                return rng.randint(max(lo, -3), min(hi, 1000))
            return rng.choice([lo, hi, -1, 0])
        if k == "bool":
            if v == "empty":
                return False
            if v in ("nulls", "extremes"):
                return True
            if v in ("rich", "gzip"):
                return self.counter % 2 == 0
            return rng.random() < 0.5
        if k == "string":
            if v == "empty":
                return ""
            if v == "nulls":
                return None if node.nullable else ""
            if v == "extremes":
                return "\u00ff" * 150
            if v in ("rich", "gzip"):
                return RICH_STRINGS[self.counter % len(RICH_STRINGS)]
            if node.nullable and rng.random() < 0.2:
                return None
            alphabet = "abcxyz-_.0123456789\u00e9\u4e2d\"\\\n"
            return "".join(rng.choice(alphabet)
                           for _ in range(rng.choice([0, 1, 3, 8, 40])))
        if k in ("bytes", "records"):
            if v == "empty":
                return b""
            if v == "nulls":
                return None if node.nullable else b""
            if k == "records" and v in ("rich", "gzip", "extremes"):
                return self.record_set(compression=1 if v == "gzip" else 0)
            if v == "extremes":
                return bytes(range(256)) * 2
            if v in ("rich", "gzip"):
                return bytes([0, 1, 0x7F, 0x80, 0xFF]) + \
                    ("b%d" % self.counter).encode()
            if node.nullable and rng.random() < 0.2:
                return None
            return bytes(rng.randrange(256)
                         for _ in range(rng.choice([0, 1, 5, 33])))
        if k == "array":
            if v == "empty":
                return []
            if v == "nulls":
                return None if node.nullable else []
            if v == "extremes":
                n = 1
            elif v in ("rich", "gzip"):
                n = 3 if depth == 0 else 2
            else:
                if node.nullable and rng.random() < 0.15:
                    return None
                n = rng.choice([0, 1, 2, 3, 4]) if depth < 2 else \
                    rng.choice([0, 1, 2])
            return [self.value(node.elem, depth + 1) for _ in range(n)]
        if k in ("struct", "group"):
            return tuple(self.value(c, depth) for c in node.children)
        if k == "wrap":
            return self.value(node.children[0], depth)
        raise AssertionError("no generator for %s" % k)

    def record_set(self, compression):
        """A real record set for the message's version (magic 0, 1 or 2)."""
        api, ver = self.combo.api_key, self.combo.version
        if api == 0:
            magic = 0 if ver <= 1 else (1 if ver == 2 else 2)
        else:
            magic = 0 if ver <= 1 else (1 if ver <= 3 else 2)
        builder = MemoryRecordsBuilder(magic, compression, 1 << 20)
        for i in range(3):
            headers = [("h%d" % i, b"hv")] if magic == 2 else []
            ts = None if magic == 0 else 1700000000000 + i
            builder.append(ts, b"key-%d" % i if i != 1 else None,
                           b"value-%d" % i * (i + 1), headers)
        builder.close()
        return bytes(builder.buffer())


# --------------------------------------------------------------------------
# Comparison of to_json() with kafka-python's values
# --------------------------------------------------------------------------

def compare(node, kv, jv, path, errs):
    k = node.kind
    if k == "struct":
        if not isinstance(jv, dict):
            errs.append("%s: expected an object, got %s" % (path or "<body>",
                                                            _short(jv)))
            return
        items = list(jv.items())
        fields = list(flat_fields(node, kv))
        if len(items) != len(fields):
            errs.append("%s: expected %d fields (%s), to_json has %d (%s)" % (
                path or "<body>", len(fields),
                ", ".join(c.ofield.name for c, _ in fields), len(items),
                ", ".join(key for key, _ in items)))
            return
        for i, ((child, v), (key, val)) in enumerate(zip(fields, items)):
            name = child.ofield.name
            sub = "%s%s" % (path + "." if path else "", name)
            if key != name:
                errs.append("%s: field %d is keyed %r, the schema name is %r"
                            % (sub, i, key, name))
            compare(child, v, val, sub, errs)
        return
    if k == "wrap":
        if not isinstance(jv, dict) or len(jv) != 1:
            errs.append("%s: expected an object of one field, got %s"
                        % (path, _short(jv)))
            return
        (key, val), = jv.items()
        name = node.children[0].ofield.name
        if key != name:
            errs.append("%s: keyed %r, the schema name is %r" % (path, key,
                                                                  name))
        compare(node.children[0], kv, val, path + "." + name, errs)
        return
    if k == "array":
        if kv is None or jv is None:
            if kv is not jv:
                errs.append("%s: expected %s, got %s" % (
                    path, "null" if kv is None else "an array of %d" % len(kv),
                    _short(jv)))
            return
        if not isinstance(jv, list) or len(jv) != len(kv):
            errs.append("%s: expected an array of %d, got %s" % (
                path, len(kv), _short(jv)))
            return
        for i, (a, b) in enumerate(zip(kv, jv)):
            compare(node.elem, a, b, "%s[%d]" % (path, i), errs)
        return
    if k in INT_RANGES:
        if isinstance(jv, bool) or not isinstance(jv, int) or jv != kv:
            errs.append("%s: expected %d, got %s" % (path, kv, _short(jv)))
        return
    if k == "bool":
        if jv is not bool(kv):
            errs.append("%s: expected %s, got %s" % (path, json.dumps(kv),
                                                      _short(jv)))
        return
    if k == "string":
        if jv != kv:
            errs.append("%s: expected %s, got %s" % (path, json.dumps(kv),
                                                      _short(jv)))
        return
    if k in ("bytes", "records"):
        want = None if kv is None else kv.hex()
        if jv != want:
            errs.append("%s: expected %s, got %s" % (path, _short(want),
                                                      _short(jv)))
        return
    errs.append("%s: cannot compare kind %s" % (path, k))


def flat_fields(node, kv):
    """(child, value) of a struct, with kafka-python's inline groups opened."""
    for child, v in zip(node.children, kv):
        if child.kind == "group":
            yield from flat_fields(child, v)
        else:
            yield child, v


def _short(v, limit=80):
    s = json.dumps(v, ensure_ascii=True)
    return s if len(s) <= limit else s[:limit] + "..."


def field_spans(node, kv, path="", pos=0, out=None):
    """(start, end, field path, node) of every leaf and array length."""
    if out is None:
        out = []
    k = node.kind
    if k in ("struct", "group"):
        for c, v in flat_fields(node, kv):
            sub = "%s%s" % (path + "." if path else "", c.ofield.name)
            pos = field_spans(c, v, sub, pos, out)[1]
        return out, pos
    if k == "wrap":
        return field_spans(node.children[0], kv,
                           path + "." + node.children[0].ofield.name, pos, out)
    if k == "array":
        out.append((pos, pos + 4, path + " (array length)", node))
        pos += 4
        for i, e in enumerate(kv or []):
            pos = field_spans(node.elem, e, "%s[%d]" % (path, i), pos, out)[1]
        return out, pos
    n = len(node.kp_type.encode(kv))
    out.append((pos, pos + n, path, node))
    return out, pos + n


def describe_byte_diff(combo, kv, want, got):
    i = 0
    while i < min(len(want), len(got)) and want[i] == got[i]:
        i += 1
    where = "past the end"
    spans, _ = field_spans(combo.tree, kv)
    for start, end, path, _ in spans:
        if start <= i < end:
            where = "in %s (bytes %d..%d)" % (path, start, end)
            break
    return ("re-encoded %d bytes, kafka-python %d; first difference at byte "
            "%d %s: expected %s, got %s" % (
                len(got), len(want), i, where, want[i:i + 16].hex() or "<end>",
                got[i:i + 16].hex() or "<end>"))


# --------------------------------------------------------------------------
# The tool
# --------------------------------------------------------------------------

def run_tool(tool, lines):
    """Runs kcodec_tool over lines; a crash costs one line, not the run."""
    results = []
    start = 0
    while start < len(lines):
        chunk = lines[start:]
        proc = subprocess.run([tool], input="".join(l + "\n" for l in chunk),
                              capture_output=True, text=True, timeout=900)
        # Not splitlines(): that also splits at U+2028, U+0085 and friends,
        # which JSON strings may hold raw.
        outs = proc.stdout.split("\n")
        if outs and outs[-1] == "":
            outs.pop()
        for o in outs[:len(chunk)]:
            try:
                results.append(json.loads(o))
            except ValueError as e:
                results.append({"ok": None, "error": "tool printed invalid "
                                "JSON (%s): %s" % (e, o[:300])})
        if len(outs) >= len(chunk):
            if proc.returncode != 0:
                # Every line answered, then a failed exit: a leak report,
                # a stdout error. Charge it to the last line.
                results[-1] = {"ok": None, "error": "kcodec_tool exited with "
                               "%d after the last line (stderr: %s)" % (
                                   proc.returncode,
                                   proc.stderr.strip()[-300:])}
            break
        # The tool died on chunk[len(outs)]: record that, go on after it.
        results.append({"ok": None, "error": "kcodec_tool exited with %d on "
                        "this input (stderr: %s)" % (
                            proc.returncode, proc.stderr.strip()[-300:])})
        start += len(outs) + 1
    return results


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def build_combos(schemas, problems):
    combos = kafka_python_combos(problems)
    for c in combos:
        spec = schemas.get(c.api_key, c.direction)
        known = KNOWN_DIFFERENCES.get(c.key)
        if spec is None:
            c.skip = "no official %s schema for API key %d" % (c.direction,
                                                               c.api_key)
            continue
        c.api_name = re.sub(r"(Request|Response)$", "", spec["name"])
        if c.version not in Versions(spec["validVersions"]):
            c.skip = "v%d is outside %s's validVersions %s" % (
                c.version, spec["_file"], spec["validVersions"])
            continue
        try:
            if c.version in Versions(spec.get("flexibleVersions")):
                raise AlignError("v%d is flexible in the official schema, "
                                 "kafka-python encodes it non-flexibly"
                                 % c.version)
            c.tree = align_struct(c.cls.SCHEMA,
                                  schemas.fields_at(spec, c.version), "",
                                  c.notes)
        except AlignError as e:
            if known:
                c.skip = "kafka-python differs from %s: %s (%s)" % (
                    spec["_file"], known, e)
            else:
                problems.append("%s: kafka-python and %s disagree: %s" % (
                    c.label(), spec["_file"], e))
            continue
        if known:
            problems.append("%s: listed in KNOWN_DIFFERENCES but the schemas "
                            "now align; remove the entry" % c.label())
            c.tree = None
    return combos


# ---- bodies the decoder must reject ---------------------------------------

NEGATIVE_KINDS = {
    "truncated": "truncated bodies (every strict prefix, sampled past 400 "
                 "bytes)",
    "null": "null (-1) in a field the version does not allow to be null",
    "negative": "length -2 in a non-nullable string, bytes or array",
    "huge": "array count 0x7fffffff or string length 0x7fff past the end",
}


def _replace(kv, path, new):
    if not path:
        return new
    i = path[0]
    seq = list(kv)
    seq[i] = _replace(seq[i], path[1:], new)
    return tuple(seq) if isinstance(kv, tuple) else seq


def nonnullable_slots(node, kv, path=(), seen=None):
    """(field path, value path) of the first value of every string, bytes or
    array field that may not be null in this version."""
    if seen is None:
        seen = set()
    k = node.kind
    if k in ("struct", "group"):
        for i, c in enumerate(node.children):
            yield from nonnullable_slots(c, kv[i], path + (i,), seen)
        return
    if k == "wrap":
        yield from nonnullable_slots(node.children[0], kv, path, seen)
        return
    if k in ("string", "bytes", "records", "array") and not node.nullable \
            and id(node) not in seen and kv is not None:
        seen.add(id(node))
        yield node, path
    if k == "array" and kv:
        yield from nonnullable_slots(node.elem, kv[0], path + (0,), seen)


def negative_cases(c, values, body):
    """(kind, description, body) the decoder must reject, from one message."""
    out = []
    for cut in truncation_points(len(body)):
        out.append(("truncated", "first %d of %d bytes" % (cut, len(body)),
                    body[:cut]))
    spans, _ = field_spans(c.tree, values)
    names = {}
    for _, _, path, node in spans:
        names.setdefault(id(node), path)
    for node, vpath in nonnullable_slots(c.tree, values):
        bad = encode_body(c, _replace(values, vpath, None))
        out.append(("null", "%s = null" % names.get(
            id(node), "?").replace(" (array length)", ""), bad))
    done = set()
    for start, _, path, node in spans:
        if id(node) in done:
            continue
        done.add(id(node))
        width = 2 if node.kind == "string" else 4
        if node.kind not in ("string", "bytes", "records", "array"):
            continue
        if not node.nullable:
            neg = b"\xff\xfe" if width == 2 else b"\xff\xff\xff\xfe"
            out.append(("negative", "%s length -2" % path,
                        body[:start] + neg + body[start + width:]))
        if node.kind in ("string", "array"):
            huge = b"\x7f\xff" if width == 2 else b"\x7f\xff\xff\xff"
            out.append(("huge", "%s length 0x%s" % (path, huge.hex()),
                        body[:start] + huge + body[start + width:]))
    return out


def truncation_points(n):
    if n <= 400:
        return list(range(n))
    rng = random.Random(n)
    pts = {0, 1, n // 2, n - 1} | {rng.randrange(n) for _ in range(96)}
    return sorted(pts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tool", help="path of kcodec_tool")
    ap.add_argument("--schemas", default=os.environ.get(
        "TRIB_KAFKA_SCHEMAS", DEFAULT_SCHEMAS),
        help="directory of the official message/*.json")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--api", type=int, action="append",
                    help="only this API key (repeatable)")
    ap.add_argument("--list", action="store_true",
                    help="print the combinations and their alignment; no tool")
    ap.add_argument("--emit", metavar="FILE",
                    help="also write the tool's input lines to FILE")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    if not os.path.isdir(args.schemas):
        print("oracle_messages: SKIP: no official schemas at %s (set --schemas or "
              "TRIB_KAFKA_SCHEMAS)" % args.schemas)
        print("0 passed, 0 failed")
        return SKIP
    schemas = OfficialSchemas(args.schemas)
    problems = []  # failures that are not about one message
    combos = build_combos(schemas, problems)
    if args.api:
        combos = [c for c in combos if c.api_key in args.api]

    if args.list:
        for c in combos:
            state = "skip: " + c.skip if c.skip else (
                "ok" if c.tree else "DISAGREES")
            print("%-40s %-28s %s" % (c.label(), c.cls.__name__, state))
            for n in c.notes:
                print("    note: " + n)
        for p in problems:
            print("problem: " + p)
        return 0
    if not args.tool:
        ap.error("--tool is required (or use --list)")

    # Build every message and its truncated prefixes.
    cases = []  # (kind, combo, variant, kp values, body bytes)
    for c in combos:
        if c.tree is None:
            continue
        bodies = set()
        for variant in VARIANTS:
            gen = Gen(c, variant, args.seed)
            values = gen.value(c.tree)
            body = encode_body(c, values)
            if body in bodies:
                continue  # e.g. every variant of an empty body
            bodies.add(body)
            cases.append(("message", c, variant, values, body))
        rich = next(x for x in cases if x[1] is c)
        for kind, what, bad in negative_cases(c, rich[3], rich[4]):
            cases.append((kind, c, "rich, " + what, None, bad))

    lines = ["%s %d %d %s" % (c.direction, c.api_key, c.version, body.hex())
             for _, c, _, _, body in cases]
    if args.emit:
        with open(args.emit, "w") as f:
            f.write("".join(l + "\n" for l in lines))
    results = run_tool(args.tool, lines)

    failures = []
    combo_failed = set()      # a message did not round-trip
    combo_neg_failed = set()  # a must-fail body was accepted
    passed = failed = 0
    messages_ok = 0
    messages = {}
    neg_ok = dict.fromkeys(NEGATIVE_KINDS, 0)
    neg_bad = dict.fromkeys(NEGATIVE_KINDS, 0)
    neg_errors = {k: {} for k in NEGATIVE_KINDS}
    for (kind, c, variant, values, body), res in zip(cases, results):
        errs = []
        if kind == "message":
            messages[c.key] = messages.get(c.key, 0) + 1
            if res.get("ok") is not True:
                errs.append("decode failed: %s" % res.get("error"))
            else:
                got = bytes.fromhex(res.get("reencoded", ""))
                if got != body:
                    errs.append(describe_byte_diff(c, values, body, got))
                compare(c.tree, values, res.get("json"), "", errs)
        else:
            if res.get("ok") is not False:
                errs.append("must be rejected (%s), was %s" % (
                    NEGATIVE_KINDS[kind], "accepted: json " + _short(
                        res.get("json"), 200) if res.get("ok") else
                    res.get("error")))
            else:
                e = res.get("error")
                neg_errors[kind][e] = neg_errors[kind].get(e, 0) + 1
        if errs:
            failed += 1
            if kind == "message":
                combo_failed.add(c.key)
            else:
                combo_neg_failed.add(c.key)
                neg_bad[kind] += 1
            failures.append("%s [%s] body %s:\n      %s" % (
                c.label(), variant,
                body.hex() if len(body) <= 64 else body[:64].hex() + "...",
                "\n      ".join(errs[:8])))
        else:
            passed += 1
            if kind == "message":
                messages_ok += 1
            else:
                neg_ok[kind] += 1

    tested = [c for c in combos if c.tree is not None]
    exact = [c for c in tested if c.key not in combo_failed]
    skipped = [c for c in combos if c.skip]
    print("oracle_messages: kafka-python %s (%s), schemas %s" % (
        kafka.__version__, os.path.dirname(kafka.__file__), args.schemas))
    print("combinations: %d in kafka-python, %d tested, %d skipped; %d "
          "round-tripped byte for byte with matching values, %d did not; "
          "%d accepted a body they must reject" % (
              len(combos), len(tested), len(skipped), len(exact),
              len(tested) - len(exact), len(combo_neg_failed)))
    print("messages: %d of %d decoded, re-encoded byte for byte and matched "
          "by value" % (messages_ok, sum(messages.values())))
    for kind, what in NEGATIVE_KINDS.items():
        print("must fail, %s: %d rejected, %d not rejected (errors: %s)" % (
            what, neg_ok[kind], neg_bad[kind], ", ".join(
                "%r x%d" % kv for kv in sorted(neg_errors[kind].items()))
            or "-"))
    if args.verbose:
        for c in exact:
            print("  ok   %-40s %d messages" % (c.label(), messages[c.key]))
    if skipped:
        print("skipped:")
        for c in skipped:
            print("  %s: %s" % (c.label(), c.skip))
    noted = [c for c in combos if c.notes and c.tree is not None]
    if KNOWN_MISNUMBERED or noted:
        print("kafka-python bugs worked around:")
        for name, why in sorted(KNOWN_MISNUMBERED.items()):
            print("  %s: %s" % (name, why))
        for c in noted:
            for n in c.notes:
                print("  %s: %s" % (c.label(), n))
    for p in problems:
        failed += 1
        print("FAIL " + p)
    for f in failures[:200]:
        print("FAIL " + f)
    if len(failures) > 200:
        print("... and %d more failures" % (len(failures) - 200))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
