#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""
An independent oracle for record batches v2 (common/kafka/record.c) and the
compression codecs (common/kafka/compress.c).

kafka-python (Debian's python3-kafka 2.0.2) has its own record batch
implementation, kafka.record.default_records, written from the Java client.
This script

  1. builds batches with kafka-python's DefaultRecordBatchBuilder for every
     codec kafka-python can use here (gzip always; snappy, lz4 and zstd when
     python3-snappy, python3-lz4 and python3-zstandard are installed):
     null keys and values, empty ones, headers (null values, empty and
     non-ASCII keys), many records, large values, negative and far-apart
     timestamps, offset gaps, producer ids/epochs/sequences, transactional
     batches; then, by patching bytes and recomputing the CRC as a broker
     would, base offsets and leader epochs, LogAppendTime, control batches
     (commit/abort markers) and the delete-horizon bit, which the builder
     cannot set;
  2. has record_tool dump them all (one file of concatenated batches ending
     in a partial batch) and checks every header field, the CRC, and every
     record's offset, timestamp, key, value and headers against what it put
     in;
  3. has record_tool rebuild each batch with OUR builder:
       - uncompressed batches must come out byte for byte identical;
       - compressed ones must decode (with kafka-python) to the same records,
         and our uncompressed rebuild must equal kafka-python's records after
         decompression, byte for byte; where the compressed bytes are
         identical too (same library, same framing) that is counted;
         gzip is also compared at level 9 with only the gzip header's
         mtime/OS bytes masked (Python stamps the time);
  4. has record_tool rebuild the whole file with every codec kafka-python can
     decode, and checks with kafka-python's DefaultRecordBatch reader that
     each of OUR batches has a valid CRC, the codec asked for, the same
     header fields and the same records.

Exit status: 0 when everything matched, 1 on any mismatch or when
kafka-python is missing. The summary says which codecs were covered and how
many batches were compared byte for byte; the last line is
"N passed, M failed".
"""

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

try:
    from kafka import codec as kcodec
    from kafka.record.default_records import (DefaultRecordBatch,
                                              DefaultRecordBatchBuilder)
    from kafka.record.util import calc_crc32c
except ImportError as e:  # a hard failure: scripts/test installs it
    print("oracle_records: kafka-python is not importable (%s); "
          "install python3-kafka" % e, file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(1)

HEADER = struct.Struct(">qiibIhiqqqhii")
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
HAS = {0: True, 1: kcodec.has_gzip(), 2: kcodec.has_snappy(),
       3: kcodec.has_lz4(), 4: kcodec.has_zstd()}
DECOMPRESS = {1: kcodec.gzip_decode, 2: kcodec.snappy_decode,
              3: kcodec.lz4_decode, 4: kcodec.zstd_decode}
COMPRESS = {1: kcodec.gzip_encode, 2: kcodec.snappy_encode,
            3: kcodec.lz4_encode, 4: kcodec.zstd_encode}


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + what)
        return cond


# ---- building with kafka-python ---------------------------------------------

class Case:
    """One batch: what went in, and the bytes kafka-python made of it."""

    def __init__(self, name, codec, records, transactional=False,
                 producer_id=-1, producer_epoch=-1, base_sequence=-1):
        self.name = "%s/%s" % (name, CODEC_NAMES[codec])
        self.records = records  # (offset_delta, timestamp, key, value, headers)
        b = DefaultRecordBatchBuilder(
            magic=2, compression_type=codec, is_transactional=transactional,
            producer_id=producer_id, producer_epoch=producer_epoch,
            base_sequence=base_sequence, batch_size=1 << 30)
        for off, ts, key, value, headers in records:
            if b.append(off, timestamp=ts, key=key, value=value,
                        headers=headers) is None:
                raise RuntimeError("builder refused a record")
        self.data = bytearray(b.build())
        self.base_offset = 0
        self.ple = 0
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.attributes = HEADER.unpack_from(self.data)[5]
        self.codec = self.attributes & 7
        self.max_ts_override = None
        self.forced = False
        if codec and not self.codec:
            # kafka-python sends uncompressed when compression does not pay;
            # compress anyway, with its own encoder, as its builder would.
            payload = COMPRESS[codec](bytes(self.data[61:]))
            self.data = self.data[:61] + bytearray(payload)
            struct.pack_into(">i", self.data, 8, len(self.data) - 12)
            self.codec = codec
            self.forced = True
            self.patch(attrs_or=codec)

    def patch(self, base_offset=None, ple=None, attrs_or=0, max_ts=None):
        """Edits the header as a broker does; fixes the CRC."""
        if base_offset is not None:
            struct.pack_into(">q", self.data, 0, base_offset)
            self.base_offset = base_offset
        if ple is not None:
            struct.pack_into(">i", self.data, 12, ple)
            self.ple = ple
        if attrs_or:
            self.attributes |= attrs_or
            struct.pack_into(">h", self.data, 21, self.attributes)
        if max_ts is not None:
            struct.pack_into(">q", self.data, 35, max_ts)
            self.max_ts_override = max_ts
        struct.pack_into(">I", self.data, 17, calc_crc32c(bytes(self.data[21:])))
        return self

    @property
    def log_append(self):
        return bool(self.attributes & 0x08)

    def expected_header(self):
        tss = [r[1] for r in self.records]
        max_ts = (self.max_ts_override if self.max_ts_override is not None
                  else max(tss))
        return {
            "base_offset": self.base_offset,
            "batch_length": len(self.data) - 12,
            "partition_leader_epoch": self.ple,
            "magic": 2,
            "attributes": self.attributes,
            "codec": self.codec,
            "timestamp_type": 1 if self.log_append else 0,
            "transactional": bool(self.attributes & 0x10),
            "control": bool(self.attributes & 0x20),
            "delete_horizon": bool(self.attributes & 0x40),
            "last_offset_delta": self.records[-1][0],
            "base_timestamp": tss[0],
            "max_timestamp": max_ts,
            "producer_id": self.producer_id,
            "producer_epoch": self.producer_epoch,
            "base_sequence": self.base_sequence,
            "record_count": len(self.records),
            "size": len(self.data),
            "crc": HEADER.unpack_from(self.data)[4],
            "crc_ok": True,
        }

    def expected_records(self):
        hdr = self.expected_header()
        out = []
        for off, ts, key, value, headers in self.records:
            out.append({
                "offset": self.base_offset + off,
                "offset_delta": off,
                "timestamp": hdr["max_timestamp"] if self.log_append else ts,
                "timestamp_delta": ts - self.records[0][1],
                "attributes": 0,
                "key": None if key is None else bytes(key).hex(),
                "value": None if value is None else bytes(value).hex(),
                "headers": [[k.encode("utf-8").hex(),
                             None if v is None else bytes(v).hex()]
                            for k, v in headers],
            })
        return out


def make_cases(codecs):
    rnd = random.Random(20240611)
    T = 1718000000000
    cases = []
    for c in codecs:
        def add(name, records, **kw):
            case = Case(name, c, records, **kw)
            cases.append(case)
            return case

        add("single", [(0, T, b"key", b"value", [])])
        add("nulls", [(0, T, None, None, []), (1, T + 1, b"", b"", []),
                      (2, T + 2, None, b"v", []), (3, T + 3, b"k", None, [])])
        add("headers", [
            (0, T, b"k", b"v", [("trace", b"abc"), ("", b""), ("n", None)]),
            (1, T, None, b"v2", [("h\u00e9ad\u00ebr-\u65e5\u672c", b"\x00\xff")]),
            (2, T, b"k3", None, [("a", b"1")] * 20),
        ])
        add("many", [(i, T + i, b"k%d" % (i % 97),
                      b"log line %d host=web-%d" % (i, i % 13), [])
                     for i in range(2000)])
        add("large", [(0, T, b"big", bytes(1 << 20), []),
                      (1, T, b"rnd", bytes(rnd.getrandbits(8) for _ in range(200000)),
                       [("x", bytes(300))]),
                      (2, T, None, b"tail", [])])
        add("timestamps", [(0, T, b"a", b"1", []), (1, T - 86400000, b"b", b"2", []),
                           (2, T + (1 << 40), b"c", b"3", []), (3, 0, b"d", b"4", []),
                           (4, -5, b"e", b"5", [])])
        add("offset-gaps", [(0, T, b"a", b"1", []), (7, T, b"b", b"2", []),
                            (300, T, b"c", b"3", []), (1 << 20, T, b"d", b"4", []),
                            (2147483000, T, b"e", b"5", [])])
        add("producer", [(i, T + i, b"k", b"v%d" % i, []) for i in range(5)],
            producer_id=123456789012, producer_epoch=32767, base_sequence=2147483000)
        add("transactional", [(i, T, b"k", b"tx%d" % i, []) for i in range(3)],
            transactional=True, producer_id=9, producer_epoch=1, base_sequence=0)
        # What a broker does to a produced batch: offsets and leader epoch.
        add("stamped", [(i, T + i, b"k", b"v", []) for i in range(4)]).patch(
            base_offset=(1 << 40) + 17, ple=12)
        # LogAppendTime: the broker's clock in maxTimestamp, bit 3 set.
        add("log-append-time", [(i, T + i, b"k", b"v%d" % i, []) for i in range(4)]).patch(
            attrs_or=0x08, max_ts=T + 999999, base_offset=100)
        # Control batches: one commit or abort marker, transactional.
        for typ, tname in ((1, "commit"), (0, "abort")):
            add("control-" + tname,
                [(0, T, struct.pack(">hh", 0, typ), struct.pack(">hi", 0, 42), [])],
                transactional=True, producer_id=77, producer_epoch=3,
                base_sequence=-1).patch(attrs_or=0x20, base_offset=5000, ple=2)
        add("delete-horizon", [(0, T, b"k", None, [])]).patch(attrs_or=0x40)
        # Random mixtures.
        for seed in range(12):
            r = random.Random(seed)
            recs, off, ts = [], 0, T + r.randint(-10**6, 10**6)
            for _ in range(r.randint(1, 60)):
                key = None if r.random() < 0.2 else bytes(
                    r.getrandbits(8) for _ in range(r.randint(0, 40)))
                value = None if r.random() < 0.1 else (
                    bytes(r.getrandbits(8) for _ in range(r.randint(0, 3000)))
                    if r.random() < 0.3 else b"msg " * r.randint(0, 500))
                headers = [("h%d" % j, None if r.random() < 0.2 else
                            bytes(r.getrandbits(8) for _ in range(r.randint(0, 30))))
                           for j in range(r.randint(0, 4))]
                recs.append((off, ts + r.randint(-5000, 5000), key, value, headers))
                off += 1 if r.random() < 0.8 else r.randint(2, 1000)
            add("random-%d" % seed, recs, transactional=r.random() < 0.3,
                producer_id=r.choice([-1, r.randint(0, 1 << 50)]),
                producer_epoch=r.choice([-1, r.randint(0, 32767)]),
                base_sequence=r.choice([-1, r.randint(0, 1 << 30)]))
    return cases


# ---- talking to record_tool --------------------------------------------------

def run_tool(tool, *args):
    p = subprocess.run([tool] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("record_tool %s failed (%d): %s" % (
            " ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout


def split_batches(data):
    out, pos = [], 0
    while pos + 12 <= len(data):
        size = 12 + struct.unpack_from(">i", data, pos + 8)[0]
        if pos + size > len(data):
            break
        out.append(bytes(data[pos:pos + size]))
        pos += size
    return out, len(data) - pos


def python_read(batch):
    """kafka-python's reader: CRC verdict, header, records as our JSON."""
    b = DefaultRecordBatch(bytes(batch))
    crc_ok = b.validate_crc()
    h = HEADER.unpack_from(batch)
    recs = []
    for r in b:
        recs.append({
            "offset": r.offset,
            "timestamp": r.timestamp,
            "key": None if r.key is None else r.key.hex(),
            "value": None if r.value is None else r.value.hex(),
            "headers": [[k.encode("utf-8").hex(), None if v is None else v.hex()]
                        for k, v in r.headers],
        })
    return crc_ok, b.compression_type, h, recs


def strip(recs, keys=("offset", "timestamp", "key", "value", "headers")):
    return [{k: r[k] for k in keys} for r in recs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    ck = Checker()

    codecs = [c for c in sorted(HAS) if HAS[c]]
    missing = [CODEC_NAMES[c] for c in sorted(HAS) if not HAS[c]]
    print("kafka-python codecs available: %s%s" % (
        ", ".join(CODEC_NAMES[c] for c in codecs),
        "; missing: %s (python3-snappy / python3-lz4 / python3-zstandard)"
        % ", ".join(missing) if missing else ""))

    cases = make_cases(codecs)
    workdir = args.workdir or tempfile.mkdtemp(prefix="oracle_records.")
    os.makedirs(workdir, exist_ok=True)
    src = os.path.join(workdir, "python.bin")
    partial_tail = bytes(cases[0].data[:30])
    with open(src, "wb") as f:
        for c in cases:
            f.write(c.data)
        f.write(partial_tail)  # as at the end of a fetch response
    actual = {}
    for c in cases:
        actual[c.codec] = actual.get(c.codec, 0) + 1
    print("kafka-python built %d batches (%s; %d compressed by hand where its "
          "builder would not)" % (len(cases), ", ".join(
              "%s %d" % (CODEC_NAMES[k], v) for k, v in sorted(actual.items())),
              sum(c.forced for c in cases)))

    # 2. Our parser against what kafka-python was given.
    dump = json.loads(run_tool(args.tool, "dump", src))
    ck.check(len(dump["batches"]) == len(cases),
             "dump: %d batches, want %d" % (len(dump["batches"]), len(cases)))
    ck.check(dump["partial"] == len(partial_tail),
             "dump: partial %d, want %d" % (dump["partial"], len(partial_tail)))
    for c, got in zip(cases, dump["batches"]):
        want = c.expected_header()
        for k, v in want.items():
            ck.check(got[k] == v, "%s: header %s = %r, want %r" % (c.name, k, got[k], v))
        wrecs = c.expected_records()
        ck.check(len(got["records"]) == len(wrecs),
                 "%s: %d records, want %d" % (c.name, len(got["records"]), len(wrecs)))
        for i, (g, w) in enumerate(zip(got["records"], wrecs)):
            for k, v in w.items():
                ck.check(g[k] == v, "%s: record %d %s = %r, want %r" % (
                    c.name, i, k, str(g[k])[:80], str(v)[:80]))
        if want["control"]:
            ctl = got["records"][0].get("control")
            typ = struct.unpack(">hh", c.records[0][2])[1]
            ck.check(ctl == {"version": 0, "type": typ, "coordinator_epoch": 42},
                     "%s: control record %r" % (c.name, ctl))

    # 3. Our builder against kafka-python's bytes.
    same = os.path.join(workdir, "ours-same.bin")
    plain = os.path.join(workdir, "ours-none.bin")
    gz9 = os.path.join(workdir, "ours-gzip9.bin")
    run_tool(args.tool, "rebuild", src, same, "same")
    run_tool(args.tool, "rebuild", src, plain, "0")
    run_tool(args.tool, "rebuild", src, gz9, "same", "9")
    ours, left = split_batches(open(same, "rb").read())
    ours_plain, _ = split_batches(open(plain, "rb").read())
    ours_gz9, _ = split_batches(open(gz9, "rb").read())
    ck.check(left == 0 and len(ours) == len(cases) and len(ours_plain) == len(cases),
             "rebuild: %d/%d batches, %d bytes left" % (len(ours), len(cases), left))
    identical_plain = identical_comp = records_identical = gzip_masked = 0
    identical_by_codec = {}
    for c, o, op, og in zip(cases, ours, ours_plain, ours_gz9):
        theirs = bytes(c.data)
        if c.codec == 0:
            if ck.check(o == theirs, "%s: rebuilt bytes differ (%d vs %d bytes)"
                        % (c.name, len(o), len(theirs))):
                identical_plain += 1
            continue
        # Compressed: the records, decompressed, byte for byte...
        inner = DECOMPRESS[c.codec](memoryview(theirs)[61:].tobytes())
        if ck.check(op[61:] == inner, "%s: records differ from kafka-python's "
                    "after decompression" % c.name):
            records_identical += 1
        th, oh = HEADER.unpack_from(theirs), HEADER.unpack_from(op)
        # ...the header fields but length, CRC and codec bits...
        ck.check(th[0] == oh[0] and th[2:4] == oh[2:4] and th[5] & ~7 == oh[5]
                 and th[6:] == oh[6:], "%s: header differs: %r vs %r" % (c.name, th, oh))
        # ...and our same-codec rebuild decodes to the same records.
        crc_ok, codec, _, recs = python_read(o)
        ck.check(crc_ok and codec == c.codec, "%s: our batch: crc %s codec %d"
                 % (c.name, crc_ok, codec))
        ck.check(recs == strip(c.expected_records()),
                 "%s: our compressed batch decodes differently" % c.name)
        if o == theirs:
            identical_comp += 1
            identical_by_codec[c.codec] = identical_by_codec.get(c.codec, 0) + 1
        if c.codec == 1:
            # kafka-python writes gzip at level 9 and stamps mtime (4..7)
            # and OS 255 (9) in the gzip header; CRCs differ accordingly.
            def mask(b):
                b = bytearray(b)
                b[17:21] = b"\0" * 4
                b[61 + 4:61 + 8] = b"\0" * 4
                b[61 + 9] = 0
                return bytes(b)
            if ck.check(mask(og) == mask(theirs), "%s: gzip level 9 differs beyond "
                        "the gzip header's mtime/OS" % c.name):
                gzip_masked += 1

    # 4. kafka-python reads our batches, every codec it can decode.
    read_back = {}
    for codec in codecs:
        out = os.path.join(workdir, "ours-%s.bin" % CODEC_NAMES[codec])
        run_tool(args.tool, "rebuild", src, out, str(codec))
        batches, left = split_batches(open(out, "rb").read())
        ck.check(left == 0 and len(batches) == len(cases),
                 "rebuild %s: %d batches" % (CODEC_NAMES[codec], len(batches)))
        n = 0
        for c, b in zip(cases, batches):
            try:
                crc_ok, got_codec, h, recs = python_read(b)
            except Exception as e:  # kafka-python could not read ours
                ck.check(False, "%s as %s: kafka-python: %r" % (c.name, CODEC_NAMES[codec], e))
                continue
            ok = ck.check(crc_ok, "%s as %s: CRC" % (c.name, CODEC_NAMES[codec]))
            ok &= ck.check(got_codec == codec, "%s as %s: codec %d"
                           % (c.name, CODEC_NAMES[codec], got_codec))
            th = HEADER.unpack_from(c.data)
            ok &= ck.check(th[0] == h[0] and th[2:4] == h[2:4] and th[5] & ~7 == h[5] & ~7
                           and th[6:] == h[6:], "%s as %s: header %r vs %r"
                           % (c.name, CODEC_NAMES[codec], h, th))
            ok &= ck.check(recs == strip(c.expected_records()),
                           "%s as %s: records differ" % (c.name, CODEC_NAMES[codec]))
            n += ok
        read_back[codec] = n

    print("parsed by record_tool: %d batches, %d records, all fields compared"
          % (len(cases), sum(len(c.records) for c in cases)))
    print("byte for byte: %d batches identical to kafka-python's "
          "(%d uncompressed, %d compressed: %s)" % (
              identical_plain + identical_comp, identical_plain, identical_comp,
              ", ".join("%s %d" % (CODEC_NAMES[k], v)
                        for k, v in sorted(identical_by_codec.items())) or "none"))
    print("compressed batches: %d with records identical after decompression; "
          "gzip level 9 identical but for the gzip header mtime/OS: %d"
          % (records_identical, gzip_masked))
    print("our batches read back by kafka-python: %s" % ", ".join(
        "%s %d/%d" % (CODEC_NAMES[k], v, len(cases)) for k, v in sorted(read_back.items())))
    print("%d passed, %d failed" % (ck.passed, ck.failed))
    return 0 if ck.failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("oracle_records: %s" % e, file=sys.stderr)
        print("0 passed, 1 failed")
        sys.exit(1)
