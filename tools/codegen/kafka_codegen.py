#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate Tributary's Kafka protocol codec from Kafka's JSON message schemas.

    python3 tools/codegen/kafka_codegen.py [--schemas DIR] [--out DIR]

Reads every *.json in DIR (Kafka's clients/src/main/resources/common/message,
JSON with // comments) and writes, into the output directory:

  <Message>.h          the C structs of one message (all versions' fields)
                       and its four functions: _init, _decode, _encode, _to_json
  <Message>.c          the field descriptor tables those functions run on
                       (the engine is common/kafka/proto.c) and its
                       trib_kafka_codec_t
  kafka_messages.h     umbrella header including every message header
  kafka_registry.c     trib_kafka_apis[] (by API key) and trib_kafka_codecs[]
                       (every message, by name)

The output is deterministic: files, structs and fields come out in a fixed
order, formatted with 4-space indents, lines within 100 columns. Stale *.c
and *.h files in the output directory are removed. Standard library only.
"""

import argparse
import json
import os
import re
import sys
import textwrap

GENERATOR = "tools/codegen/kafka_codegen.py"
VMAX = 0x7FFF
WIDTH = 100

# Schema primitive type -> (C type, TRIB_KAFKA_T_*, array typedef).
PRIMS = {
    "bool": ("bool", "BOOL", "trib_karr_bool_t"),
    "int8": ("int8_t", "INT8", "trib_karr_int8_t"),
    "int16": ("int16_t", "INT16", "trib_karr_int16_t"),
    "uint16": ("uint16_t", "UINT16", "trib_karr_uint16_t"),
    "int32": ("int32_t", "INT32", "trib_karr_int32_t"),
    "uint32": ("uint32_t", "UINT32", "trib_karr_uint32_t"),
    "int64": ("int64_t", "INT64", "trib_karr_int64_t"),
    "float64": ("double", "FLOAT64", "trib_karr_float64_t"),
    "string": ("trib_kstr_t", "STRING", "trib_karr_str_t"),
    "bytes": ("trib_kbytes_t", "BYTES", "trib_karr_bytes_t"),
    "records": ("trib_kbytes_t", "RECORDS", None),
    "uuid": ("trib_uuid_t", "UUID", "trib_karr_uuid_t"),
}
INT_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint16": (0, (1 << 16) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
}
FIELD_KEYS = {
    "name", "type", "versions", "about", "fields", "default", "entityType", "ignorable",
    "nullableVersions", "mapKey", "tag", "taggedVersions", "zeroCopy", "flexibleVersions",
}
C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool", "true", "false",
}
MESSAGE_KEYS = {
    "apiKey", "type", "listeners", "name", "validVersions", "deprecatedVersions",
    "flexibleVersions", "fields", "commonStructs", "latestVersionUnstable",
}


class SchemaError(Exception):
    pass


def strip_comments(text):
    """Removes // comments, leaving // inside JSON strings alone."""
    out = []
    i, n = 0, len(text)
    in_str = False
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
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_versions(spec, what):
    """'3+', '0-7', '5', 'none' or '' -> (lo, hi), or None for no versions."""
    if spec is None:
        return None
    spec = spec.strip()
    if spec in ("", "none"):
        return None
    m = re.fullmatch(r"(\d+)\+", spec)
    if m:
        return (int(m.group(1)), VMAX)
    m = re.fullmatch(r"(\d+)-(\d+)", spec)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise SchemaError("%s: empty version range %r" % (what, spec))
        return (lo, hi)
    m = re.fullmatch(r"\d+", spec)
    if m:
        return (int(spec), int(spec))
    raise SchemaError("%s: bad version range %r" % (what, spec))


def intersect(a, b):
    if a is None or b is None:
        return None
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo <= hi else None


def vtext(r):
    if r is None:
        return "none"
    if r[1] == VMAX:
        return "%d+" % r[0]
    if r[0] == r[1]:
        return "%d" % r[0]
    return "%d-%d" % r


def vc(n):
    return "TRIB_KV_MAX" if n == VMAX else str(n)


def parse_int(text, typ, what):
    s = str(text).strip()
    try:
        if re.fullmatch(r"-?0[0-7]+", s):
            v = int(s, 8)
        else:
            v = int(s, 0)
    except ValueError:
        raise SchemaError("%s: bad %s default %r" % (what, typ, text))
    lo, hi = INT_RANGES[typ]
    if not lo <= v <= hi:
        raise SchemaError("%s: default %r out of range for %s" % (what, text, typ))
    return v


def c_int(v):
    if -(1 << 31) < v < (1 << 31):
        return str(v)
    if v < 0:
        return "(-INT64_C(%d) - 1)" % (-v - 1)
    return "INT64_C(%d)" % v


def c_string(s):
    out = ['"']
    for ch in s.encode("utf-8"):
        c = chr(ch)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= ch < 0x7F:
            out.append(c)
        else:
            out.append("\\%03o" % ch)
    out.append('"')
    return "".join(out)


def comment_text(s):
    s = " ".join(str(s).split())
    return s.replace("*/", "* /").replace("/*", "/ *")


def wrap_comment(text, indent):
    """A /* */ comment of text, wrapped to WIDTH columns."""
    pad = " " * indent
    one = "%s/* %s */" % (pad, text)
    if len(one) <= WIDTH:
        return [one]
    lines = textwrap.wrap(text, WIDTH - indent - 3, break_long_words=False,
                          break_on_hyphens=False)
    return ["%s/*" % pad] + ["%s * %s" % (pad, ln) for ln in lines] + ["%s */" % pad]


def wrap_items(head, items, tail, indent, cont):
    """head + items joined by ', ' + tail, wrapped greedily (continuation at `cont`)."""
    lines = []
    cur = " " * indent + head
    first = True
    for k, item in enumerate(items):
        piece = item + ("," if k + 1 < len(items) else tail)
        sep = "" if first else " "
        if "\n" in piece:
            head_part, rest = piece.split("\n", 1)
            if not first and len(cur) + len(sep) + len(head_part) > WIDTH:
                lines.append(cur)
                cur, sep = " " * cont, ""
                rest = " " * (cont - 5) + rest if cont > 5 else rest
            lines.append(cur + sep + head_part)
            cur = rest
            first = False
            continue
        if not first and len(cur) + len(sep) + len(piece) > WIDTH:
            lines.append(cur)
            cur = " " * cont + piece
        else:
            cur += sep + piece
        first = False
    if not items:
        cur += tail
    lines.append(cur)
    return lines


def split_decl(left, right, indent, join=" "):
    """`left right` on one line, or right on a continuation line if too long."""
    one = " " * indent + left + join + right
    if len(one) <= WIDTH:
        return [one]
    return [" " * indent + left.rstrip(), " " * (indent + 4) + right]


def c_proto(ret, name, args, suffix=";"):
    head = "%s %s(" % (ret, name)
    first = args[0] + ("," if len(args) > 1 else ")" + suffix)
    if len(head) + len(first) > WIDTH:
        return [head] + wrap_items("", args, ")" + suffix, 4, 4)
    return wrap_items(head, args, ")" + suffix, 0, len(head))


class Field:
    def __init__(self, msg, owner, spec):
        self.msg = msg
        what = "%s: %s.%s" % (msg.file, owner, spec.get("name"))
        self.what = what
        unknown = set(spec) - FIELD_KEYS
        if unknown:
            raise SchemaError("%s: unsupported keys %s" % (what, sorted(unknown)))
        self.name = spec["name"]
        # Field names are kept as the schema spells them (a few start lower-case).
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", self.name) or self.name in C_KEYWORDS:
            raise SchemaError("%s: field name is not a usable C identifier" % what)
        self.about = spec.get("about", "")
        self.versions = parse_versions(spec.get("versions"), what)
        if self.versions is None:
            raise SchemaError("%s: a field needs versions" % what)
        self.nullable = parse_versions(spec.get("nullableVersions"), what)
        self.ignorable = bool(spec.get("ignorable", False))
        self.zero_copy = bool(spec.get("zeroCopy", False))
        self.entity = spec.get("entityType")
        self.tag = spec.get("tag")
        self.tagged = parse_versions(spec.get("taggedVersions"), what)
        if (self.tag is None) != (self.tagged is None):
            raise SchemaError("%s: tag and taggedVersions go together" % what)
        if self.tagged is not None:
            if self.tagged[1] != VMAX:
                raise SchemaError("%s: taggedVersions must be open-ended" % what)
            if isinstance(self.tag, str) and re.fullmatch(r"\d+", self.tag.strip()):
                self.tag = int(self.tag)  # a few schemas quote it
            if not isinstance(self.tag, int) or isinstance(self.tag, bool) or self.tag < 0:
                raise SchemaError("%s: bad tag %r" % (what, self.tag))
        self.noflex = False
        if "flexibleVersions" in spec:
            if parse_versions(spec["flexibleVersions"], what) is not None:
                raise SchemaError("%s: only field flexibleVersions 'none' is supported" % what)
            self.noflex = True
        typ = spec["type"]
        self.array = typ.startswith("[]")
        self.elem = typ[2:] if self.array else typ
        self.is_struct = self.elem not in PRIMS
        if self.is_struct and not re.fullmatch(r"[A-Z][A-Za-z0-9]*", self.elem):
            raise SchemaError("%s: unknown type %r" % (what, typ))
        if self.elem == "records" and self.array:
            raise SchemaError("%s: arrays of records are not supported" % what)
        self.inline_fields = spec.get("fields")
        if self.inline_fields is not None and not self.is_struct:
            raise SchemaError("%s: a %s field cannot have fields" % (what, typ))
        self.default = spec.get("default")
        self.struct = None  # resolved later

    @property
    def ptr(self):
        return self.is_struct and not self.array and self.nullable is not None

    def defnull(self):
        if self.elem == "records" and not self.array:
            return True  # Kafka: records fields default to null
        return self.default is not None and str(self.default).strip() == "null"

    def check_default(self):
        d, what = self.default, self.what
        if self.defnull():
            if self.default is not None and self.nullable is None:
                raise SchemaError("%s: default null on a field never nullable" % what)
            return
        if d is None:
            if self.ptr:
                raise SchemaError("%s: nullable struct fields must default to null" % what)
            return
        if self.array or self.is_struct:
            raise SchemaError("%s: only null can be the default of %s" % (what, self.elem))
        if self.elem in INT_RANGES:
            parse_int(d, self.elem, what)
        elif self.elem == "bool":
            if str(d).strip().lower() not in ("true", "false"):
                raise SchemaError("%s: bad bool default %r" % (what, d))
        elif self.elem == "float64":
            try:
                float(str(d))
            except ValueError:
                raise SchemaError("%s: bad float64 default %r" % (what, d))
        elif self.elem == "string":
            pass
        elif self.elem == "uuid":
            if str(d).strip().replace("-", "") not in ("", "0" * 32, "AAAAAAAAAAAAAAAAAAAAAA"):
                raise SchemaError("%s: only the zero uuid can be a default" % what)
        else:
            raise SchemaError("%s: %s fields cannot have a default" % (what, self.elem))

    def ctype(self):
        if self.is_struct:
            cname = self.struct.cname
            if self.array:
                return cname + "_array"
            return cname + " *" if self.ptr else cname
        if self.array:
            return PRIMS[self.elem][2]
        return PRIMS[self.elem][0]

    def describe(self):
        parts = []
        typ = ("[]" if self.array else "") + self.elem
        parts.append(typ)
        parts.append("versions " + vtext(self.versions))
        if self.nullable is not None:
            parts.append("nullable " + vtext(self.nullable))
        if self.tagged is not None:
            parts.append("tag %d from %s" % (self.tag, vtext(self.tagged)))
        if self.default is not None:
            parts.append("default %s" % str(self.default).strip())
        if self.ignorable:
            parts.append("ignorable")
        if self.zero_copy:
            parts.append("zero-copy")
        if self.noflex:
            parts.append("never compact")
        return ", ".join(parts)

    def desc_items(self, owner_cname):
        kf = "{TRIB_KF(%s, %s)" % (owner_cname, self.name)
        if 4 + len(kf) + 1 > WIDTH:
            kf = "{TRIB_KF(%s,\n%s%s)" % (owner_cname, " " * 13, self.name)
        items = [kf]
        items.append(".type = TRIB_KAFKA_T_%s" % ("STRUCT" if self.is_struct
                                                    else PRIMS[self.elem][1]))
        flags = []
        if self.array:
            flags.append("ARRAY")
        if self.nullable is not None:
            flags.append("NULLABLE")
        if self.tagged is not None:
            flags.append("TAGGED")
        if self.ignorable:
            flags.append("IGNORABLE")
        if self.defnull():
            flags.append("DEFNULL")
        if self.noflex:
            flags.append("NOFLEX")
        if not self.array and (self.elem == "records" or (self.elem == "bytes" and
                                                          self.zero_copy)):
            flags.append("REF")
        if self.ptr:
            flags.append("PTR")
        if flags:
            fl = ".flags = " + " | ".join("TRIB_KAFKA_F_" + f for f in flags)
            if 5 + len(fl) + 1 > WIDTH:
                half = (len(flags) + 1) // 2
                fl = (".flags = " + " | ".join("TRIB_KAFKA_F_" + f for f in flags[:half]) +
                      " |\n" + " " * 14 + " | ".join("TRIB_KAFKA_F_" + f for f in flags[half:]))
            items.append(fl)
        items.append(".vmin = %d" % self.versions[0])
        items.append(".vmax = %s" % vc(self.versions[1]))
        if self.nullable is not None:
            items.append(".nmin = %d" % self.nullable[0])
            items.append(".nmax = %s" % vc(self.nullable[1]))
        if self.tagged is not None:
            items.append(".tag_min = %d" % self.tagged[0])
            items.append(".tag = %d" % self.tag)
        if self.is_struct:
            items.append(".sub = &%s_desc" % self.struct.cname)
        d = self.default
        if d is not None and not self.defnull() and not self.array and not self.is_struct:
            if self.elem in INT_RANGES:
                v = parse_int(d, self.elem, self.what)
                if v:
                    items.append(".def_int = %s" % c_int(v))
            elif self.elem == "bool":
                if str(d).strip().lower() == "true":
                    items.append(".def_int = 1")
            elif self.elem == "float64":
                v = float(str(d))
                if v != 0.0:
                    items.append(".def_float = %r" % v)
            elif self.elem == "string":
                if str(d) != "":
                    items.append(".def_str = %s" % c_string(str(d)))
        items[-1] += "}"
        return items


class Struct:
    def __init__(self, msg, name, cname, fields_spec, where):
        self.msg = msg
        self.name = name
        self.cname = cname
        self.where = where
        self.fields = [Field(msg, cname, f) for f in fields_spec]
        seen = set()
        for f in self.fields:
            if f.name in seen:
                raise SchemaError("%s: %s has two fields named %s" % (msg.file, cname, f.name))
            seen.add(f.name)
        tags = [f.tag for f in self.fields if f.tagged is not None]
        if len(set(tags)) != len(tags):
            raise SchemaError("%s: %s reuses a tag" % (msg.file, cname))
        if tags != sorted(tags):
            raise SchemaError("%s: %s: tagged fields must appear in ascending tag order"
                              % (msg.file, cname))
        self.ntagged = len(tags)


class Message:
    def __init__(self, path):
        self.file = os.path.basename(path)
        with open(path, encoding="utf-8") as fh:
            raw = fh.read()
        try:
            spec = json.loads(strip_comments(raw))
        except json.JSONDecodeError as e:
            raise SchemaError("%s: %s" % (self.file, e))
        unknown = set(spec) - MESSAGE_KEYS
        if unknown:
            raise SchemaError("%s: unsupported keys %s" % (self.file, sorted(unknown)))
        self.name = spec["name"]
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", self.name):
            raise SchemaError("%s: message name is not CamelCase" % self.file)
        if self.file != self.name + ".json":
            raise SchemaError("%s: file name does not match message %s" % (self.file, self.name))
        self.type = spec["type"]
        self.api_key = spec.get("apiKey")
        self.valid = parse_versions(spec["validVersions"], self.file)
        if self.valid is None or self.valid[1] == VMAX:
            raise SchemaError("%s: validVersions must be a closed range" % self.file)
        self.flexible = parse_versions(spec.get("flexibleVersions", "none"), self.file)
        if self.flexible is not None and self.flexible[1] != VMAX:
            raise SchemaError("%s: flexibleVersions must be open-ended" % self.file)
        self.listeners = spec.get("listeners", [])
        self.unstable = bool(spec.get("latestVersionUnstable", False))

        # Structs: the root, inline ones (defined by a field with "fields"),
        # and commonStructs (referenced by type name).
        self.common = {}
        for cs in spec.get("commonStructs", []):
            self.common[cs["name"]] = cs
        self.structs = {}
        self.root = Struct(self, self.name, self.name, spec.get("fields", []), "message")
        self._resolve(self.root)
        for name in sorted(self.common):
            if name not in self.structs:
                self._define(name, self.common[name]["fields"], "common struct")
        self.order = self._post_order()
        for st in self.order:
            for f in st.fields:
                f.check_default()
                if f.tagged is not None:
                    if self.flexible is None or f.tagged[0] < self.flexible[0]:
                        raise SchemaError("%s: %s.%s is tagged outside flexible versions"
                                          % (self.file, st.cname, f.name))
                    if f.elem == "records":
                        raise SchemaError("%s: records cannot be tagged" % self.file)
                if f.nullable is not None and not (f.array or f.is_struct or
                                                   f.elem in ("string", "bytes", "records")):
                    raise SchemaError("%s: %s.%s: %s cannot be nullable"
                                      % (self.file, st.cname, f.name, f.elem))

    def _define(self, name, fields_spec, where):
        if name in self.structs:
            raise SchemaError("%s: struct %s defined twice" % (self.file, name))
        st = Struct(self, name, "%s_%s" % (self.name, name), fields_spec, where)
        self.structs[name] = st
        self._resolve(st)
        return st

    def _resolve(self, st):
        for f in st.fields:
            if not f.is_struct:
                continue
            if f.inline_fields is not None:
                if f.elem in self.common:
                    raise SchemaError("%s: %s is both inline and common" % (self.file, f.elem))
                f.struct = self._define(f.elem, f.inline_fields, "%s.%s" % (st.cname, f.name))
            elif f.elem in self.structs:
                f.struct = self.structs[f.elem]
            elif f.elem in self.common:
                f.struct = self._define(f.elem, self.common[f.elem]["fields"], "common struct")
            else:
                raise SchemaError("%s: unknown struct type %s" % (self.file, f.elem))

    def _post_order(self):
        """Structs with every by-value dependency first; the root last."""
        out, state = [], {}

        def visit(st):
            if state.get(st.cname) == "done":
                return
            if state.get(st.cname) == "busy":
                raise SchemaError("%s: recursive struct %s" % (self.file, st.cname))
            state[st.cname] = "busy"
            for f in st.fields:
                if f.is_struct:
                    visit(f.struct)
            state[st.cname] = "done"
            out.append(st)

        visit(self.root)
        for name in sorted(self.structs):
            visit(self.structs[name])
        # The root must come last so helpers can reference it; move it if needed.
        out.remove(self.root)
        out.append(self.root)
        return out

    @property
    def first_flexible(self):
        if self.flexible is None or self.flexible[0] > self.valid[1]:
            return -1
        return max(self.flexible[0], self.valid[0])


def banner(msg_file):
    return [
        "/* SPDX-License-Identifier: Apache-2.0 */",
        "/* generated by %s from %s; do not edit */" % (GENERATOR, msg_file),
    ]


def guard(name):
    return "TRIB_KAFKA_GEN_%s_H" % re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def gen_header(msg):
    L = banner(msg.file)
    g = guard(msg.name)
    L += ["#ifndef " + g, "#define " + g, "", '#include "tributary/kafka.h"', ""]
    info = ["%s: %s" % (msg.name, msg.type)]
    if msg.api_key is not None:
        info.append("api key %d" % msg.api_key)
    info.append("versions %s" % vtext(msg.valid))
    info.append("flexible %s" % vtext(msg.flexible))
    if msg.unstable:
        info.append("latest version unstable")
    L += wrap_comment(", ".join(info) + ".", 0)
    L.append("")
    for st in msg.order:
        L += split_decl("typedef struct %s" % st.cname, st.cname + ";", 0)
    arrays = sorted({f.struct.cname for st in msg.order for f in st.fields
                     if f.is_struct and f.array})
    for cname in arrays:
        L += [""] + wrap_comment("An array of %s; count -1 = null." % cname, 0)
        L += ["typedef struct %s_array {" % cname,
              "    %s *items;" % cname,
              "    int32_t count;",
              "} %s_array;" % cname]
    for st in msg.order:
        L.append("")
        if st is msg.root:
            L += wrap_comment("The %s message, all versions' fields." % msg.name, 0)
        else:
            L += wrap_comment("%s (%s)." % (st.name, st.where), 0)
        L.append("struct %s {" % st.cname)
        for f in st.fields:
            text = comment_text(f.about)
            text = (text + " " if text else "") + "[" + f.describe() + "]"
            L += wrap_comment(text, 4)
            ct = f.ctype()
            L += split_decl(ct if ct.endswith("*") else ct + " ", f.name + ";", 4, join="")
        if msg.flexible is not None:
            L.append("    trib_ktags_t unknown_tags; /* tagged fields this codec does not know */")
        if not st.fields and msg.flexible is None:
            L.append("    char unused_; /* C wants a member */")
        L.append("};")
    n = msg.name
    L += ["", "extern const trib_kafka_codec_t %s_codec;" % n, ""]
    L += c_proto("void", n + "_init", ["%s *m" % n])
    subs = [st for st in msg.order if st is not msg.root]
    if subs:
        L += ["/* Schema defaults for an element you build (arrays are empty or null). */"]
        for st in subs:
            L += c_proto("void", st.cname + "_init", ["%s *m" % st.cname])
    L += c_proto("int", n + "_decode",
                 ["%s *m" % n, "trib_slice_t *s", "int16_t version", "trib_arena_t *a"])
    L += c_proto("int", n + "_encode", ["const %s *m" % n, "trib_buf_t *b", "int16_t version"])
    L += c_proto("int", n + "_to_json",
                 ["const %s *m" % n, "int16_t version", "trib_buf_t *out"])
    L += ["", "#endif"]
    return "\n".join(L) + "\n"


def gen_source(msg):
    L = banner(msg.file)
    L += ['#include "kafka/gen/%s.h"' % msg.name, "", "#include <stddef.h>", ""]
    for st in msg.order:
        if st.fields:
            L += split_decl("static const trib_kafka_field_t", "%s_fields[] = {" % st.cname, 0)
            for f in st.fields:
                L += wrap_items("", f.desc_items(st.cname), ",", 4, 5)
            L.append("};")
            L.append("")
        if msg.flexible is not None:
            items = ["TRIB_KS_TAGS(%s)" % st.cname, ".flex_min = %d" % msg.flexible[0]]
        else:
            items = ["TRIB_KS(%s)" % st.cname, ".flex_min = TRIB_KV_NONE"]
        items.append(".nfields = %d" % len(st.fields))
        if st.ntagged:
            items.append(".ntagged = %d" % st.ntagged)
        items.append(".fields = %s" % ("%s_fields" % st.cname if st.fields else "NULL"))
        L += split_decl("static const trib_kafka_struct_desc_t", "%s_desc = {" % st.cname, 0)
        L += wrap_items("", items, ",", 4, 4)
        L.append("};")
        L.append("")
    n = msg.name
    L += ["static const trib_kafka_msg_desc_t %s_msg = {" % n]
    L += wrap_items("", [".root = &%s_desc" % n, ".min_version = %d" % msg.valid[0],
                         ".max_version = %d" % msg.valid[1]], ",", 4, 4)
    L += ["};"]
    L.append("")
    for st in msg.order:
        L += c_proto("void", st.cname + "_init", ["%s *m" % st.cname], "")
        call = "    trib_kafka_struct_init(&%s_desc, m);" % st.cname
        if len(call) > WIDTH:
            call = "    trib_kafka_struct_init(\n        &%s_desc, m);" % st.cname
        L += ["{", call, "}", ""]
    L += c_proto("int", n + "_decode",
                 ["%s *m" % n, "trib_slice_t *s", "int16_t version", "trib_arena_t *a"], "")
    L += ["{", "    return trib_kafka_msg_decode(&%s_msg, m, s, version, a);" % n, "}", ""]
    L += c_proto("int", n + "_encode", ["const %s *m" % n, "trib_buf_t *b", "int16_t version"],
                 "")
    L += ["{", "    return trib_kafka_msg_encode(&%s_msg, m, b, version);" % n, "}", ""]
    L += c_proto("int", n + "_to_json", ["const %s *m" % n, "int16_t version", "trib_buf_t *out"],
                 "")
    L += ["{", "    return trib_kafka_msg_to_json(&%s_msg, m, version, out);" % n, "}", ""]
    # Thunks with the generic signatures of trib_kafka_codec_t.
    L += ["static void codec_init(void *m)", "{", "    %s_init(m);" % n, "}", ""]
    L += ["static int codec_decode(void *m, trib_slice_t *s, int16_t version, trib_arena_t *a)",
          "{", "    return %s_decode(m, s, version, a);" % n, "}", ""]
    L += ["static int codec_encode(const void *m, trib_buf_t *b, int16_t version)",
          "{", "    return %s_encode(m, b, version);" % n, "}", ""]
    L += ["static int codec_to_json(const void *m, int16_t version, trib_buf_t *out)",
          "{", "    return %s_to_json(m, version, out);" % n, "}", ""]
    L += ["const trib_kafka_codec_t %s_codec = {" % n,
          '    .name = "%s",' % n,
          "    .size = sizeof(%s)," % n,
          "    .init = codec_init,",
          "    .decode = codec_decode,",
          "    .encode = codec_encode,",
          "    .to_json = codec_to_json,",
          "    .min_version = %d," % msg.valid[0],
          "    .max_version = %d," % msg.valid[1],
          "    .first_flexible = %d," % msg.first_flexible,
          "    .desc = &%s_desc," % n,
          "};"]
    return "\n".join(L) + "\n"


def gen_umbrella(msgs):
    L = banner("every message schema")
    L[1] = "/* generated by %s from every message schema; do not edit */" % GENERATOR
    L += ["/* Every generated Kafka message; the API and codec tables are in kafka.h. */"]
    g = guard("kafka_messages")
    L += ["#ifndef " + g, "#define " + g, "", '#include "tributary/kafka.h"', ""]
    for m in msgs:
        L.append('#include "kafka/gen/%s.h"' % m.name)
    L += ["", "#endif"]
    return "\n".join(L) + "\n"


def gen_registry(msgs):
    L = banner("every message schema")
    L[1] = "/* generated by %s from every message schema; do not edit */" % GENERATOR
    L += ["/* The API table (by key) and the codec table (by name) declared in kafka.h. */",
          '#include "kafka/gen/kafka_messages.h"', ""]
    apis = {}
    for m in msgs:
        if m.type in ("request", "response"):
            if m.api_key is None:
                raise SchemaError("%s: a %s needs an apiKey" % (m.file, m.type))
            slot = apis.setdefault(m.api_key, {})
            if m.type in slot:
                raise SchemaError("%s: api key %d has two %ss" % (m.file, m.api_key, m.type))
            slot[m.type] = m
    L.append("const trib_kafka_api_t trib_kafka_apis[] = {")
    for key in sorted(apis):
        slot = apis[key]
        req, resp = slot.get("request"), slot.get("response")
        if req is None or resp is None:
            raise SchemaError("api key %d lacks a request or a response" % key)
        if req.valid != resp.valid or req.flexible != resp.flexible:
            raise SchemaError("api key %d: request and response versions differ" % key)
        name = req.name[:-len("Request")] if req.name.endswith("Request") else req.name
        L += wrap_items("{", ["%d" % key, '"%s"' % name, "%d" % req.valid[0],
                              "%d" % req.valid[1], "%d" % req.first_flexible,
                              "&%s_codec" % req.name, "&%s_codec" % resp.name], "},", 4, 5)
    L += ["};", "const size_t trib_kafka_api_count = sizeof(trib_kafka_apis) / "
          "sizeof(trib_kafka_apis[0]);", ""]
    L.append("const trib_kafka_codec_t *const trib_kafka_codecs[] = {")
    for m in sorted(msgs, key=lambda m: m.name.encode()):
        L.append("    &%s_codec," % m.name)
    L += ["};", "const size_t trib_kafka_codec_count = sizeof(trib_kafka_codecs) / "
          "sizeof(trib_kafka_codecs[0]);"]
    return "\n".join(L) + "\n"


def generate(schemas, out):
    names = sorted(f for f in os.listdir(schemas) if f.endswith(".json"))
    if not names:
        raise SchemaError("no *.json schemas in %s" % schemas)
    msgs = [Message(os.path.join(schemas, f)) for f in names]
    msgs.sort(key=lambda m: m.name.encode())
    files = {}
    for m in msgs:
        files[m.name + ".h"] = gen_header(m)
        files[m.name + ".c"] = gen_source(m)
    files["kafka_messages.h"] = gen_umbrella(msgs)
    files["kafka_registry.c"] = gen_registry(msgs)
    for body in files.values():
        for ln in body.splitlines()[2:]:  # the banner line may be long
            if len(ln) > WIDTH:
                raise SchemaError("generated line over %d columns: %s" % (WIDTH, ln))
    os.makedirs(out, exist_ok=True)
    for stale in sorted(os.listdir(out)):
        if stale.endswith((".c", ".h")) and stale not in files:
            os.remove(os.path.join(out, stale))
    for name in sorted(files):
        path = os.path.join(out, name)
        data = files[name].encode("utf-8")
        try:
            with open(path, "rb") as fh:
                if fh.read() == data:
                    continue
        except FileNotFoundError:
            pass
        with open(path, "wb") as fh:
            fh.write(data)
    return msgs


def main(argv=None):
    repo = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemas",
                    default=os.path.join(repo, "..", "shared", "kafka-protocol", "message"),
                    help="directory of Kafka message schemas (*.json)")
    ap.add_argument("--out", default=os.path.join(repo, "common", "kafka", "gen"),
                    help="output directory (default: common/kafka/gen)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        msgs = generate(args.schemas, args.out)
    except (SchemaError, OSError) as e:
        print("kafka_codegen: error: %s" % e, file=sys.stderr)
        return 1
    if not args.quiet:
        nv = sum(m.valid[1] - m.valid[0] + 1 for m in msgs)
        print("kafka_codegen: %d messages, %d (message, version) pairs -> %s"
              % (len(msgs), nv, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
