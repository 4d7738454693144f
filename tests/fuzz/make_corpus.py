#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora for the fuzz targets (committed under corpus/).

Seeds come from an independent implementation, kafka-python (Debian's
python3-kafka; run with /usr/bin/python3): request frames for a spread of
APIs and versions, and record batches with every codec it has here. Re-run
after changing the targets' input format:

    /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import os
import struct

from kafka.protocol import admin, commit, fetch, group, metadata, offset, produce
from kafka.record.default_records import DefaultRecordBatchBuilder

HERE = os.path.dirname(os.path.abspath(__file__))


def batch(codec, n, transactional=False, base_offset=0, headers=True):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=transactional,
                                  producer_id=7 if transactional else -1,
                                  producer_epoch=1 if transactional else -1,
                                  base_sequence=0 if transactional else -1, batch_size=1 << 20)
    for i in range(n):
        hdrs = [("h%d" % i, b"v" * (i % 5))] if headers else []
        key = None if i % 3 == 0 else ("key-%d" % i).encode()
        value = None if i % 7 == 6 else ("value %d " % i).encode() * (1 + i % 4)
        b.append(i, timestamp=1700000000000 + i, key=key, value=value, headers=hdrs)
    out = bytearray(b.build())
    struct.pack_into(">q", out, 0, base_offset)
    return bytes(out)


def frame(req, correlation_id, client_id="fuzz"):
    body = req.encode()
    cid = client_id.encode()
    header = struct.pack(">hhih", req.API_KEY, req.API_VERSION, correlation_id, len(cid)) + cid
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def write(sub, name, data):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    codecs = {"none": 0, "gzip": 1}
    for name, codec in (("snappy", 2), ("lz4", 3), ("zstd", 4)):
        try:
            batch(codec, 1)
            codecs[name] = codec
        except Exception:  # the codec's Python module is not installed
            pass
    batches = []
    for name, codec in sorted(codecs.items(), key=lambda kv: kv[1]):
        one = batch(codec, 5)
        write("record_batch", "batch-%s" % name, one)
        batches.append(one)
    write("record_batch", "batch-txn", batch(0, 3, transactional=True))
    write("record_batch", "batch-noheaders", batch(0, 20, headers=False, base_offset=100))
    two = batches[0] + batch(0, 2, base_offset=5)
    write("record_batch", "two-batches", two)
    write("record_batch", "partial-tail", two + batches[0][:30])

    records = batches[0]
    reqs = [
        ("apiversions-v0", admin.ApiVersionRequest[0]()),
        ("metadata-v0", metadata.MetadataRequest[0](topics=["a", "b"])),
        ("metadata-v1-all", metadata.MetadataRequest[1](topics=None)),
        ("metadata-v4", metadata.MetadataRequest[4](topics=["t"], allow_auto_topic_creation=True)),
        ("produce-v3", produce.ProduceRequest[3](transactional_id=None, required_acks=-1,
                                                  timeout=30000,
                                                  topics=[("t", [(0, records), (1, records)])])),
        ("produce-v7", produce.ProduceRequest[7](transactional_id="tx", required_acks=1,
                                                  timeout=1000, topics=[("web", [(2, records)])])),
        ("fetch-v4", fetch.FetchRequest[4](-1, 500, 1, 1 << 20, 0,
                                           [("t", [(0, 42, 1 << 20)])])),
        ("fetch-v11", fetch.FetchRequest[11](-1, 500, 1, 1 << 20, 0, 0, -1,
                                             [("t", [(0, -1, 42, 0, 1 << 20)])], [], "")),
        ("listoffsets-v1", offset.OffsetRequest[1](-1, [("t", [(0, -2)])])),
        ("findcoordinator-v0", commit.GroupCoordinatorRequest[0]("group-a")),
        ("joingroup-v2", group.JoinGroupRequest[2]("g", 10000, 30000, "", "consumer",
                                                   [("range", b"\x00\x01meta")])),
        ("syncgroup-v1", group.SyncGroupRequest[1]("g", 1, "m-1", [("m-1", b"\x00assign")])),
        ("heartbeat-v1", group.HeartbeatRequest[1]("g", 1, "m-1")),
        ("offsetcommit-v2", commit.OffsetCommitRequest[2]("g", 1, "m-1", -1,
                                                          [("t", [(0, 10, "meta")])])),
        ("offsetfetch-v1", commit.OffsetFetchRequest[1]("g", [("t", [0, 1])])),
        ("createtopics-v1", admin.CreateTopicsRequest[1]([("t", 3, 1, [], [])], 1000, False)),
    ]
    for i, (name, req) in enumerate(reqs):
        write("request", name, frame(req, i + 1))
    # A flexible request with header v2 and tagged fields, by hand:
    # ApiVersions v3: client_software_name, client_software_version (compact), no tags.
    body = b"\x05trib" + b"\x040.1" + b"\x00"
    header = struct.pack(">hhih", 18, 3, 99, 4) + b"fuzz" + b"\x00"
    write("request", "apiversions-v3", struct.pack(">i", len(header + body)) + header + body)
    print("corpus written: codecs %s" % ", ".join(sorted(codecs)))


if __name__ == "__main__":
    main()
