# SPDX-License-Identifier: Apache-2.0
"""The cluster checker (lib/checker.py) can fail: synthetic histories.

A clean history (three producers over two partitions, consumers reading
along, a final read of everything, faults with acknowledgements around
them, a passing replica check) must give no anomaly; then each anomaly is
planted into a copy of it, alone, and the checker must report exactly
that kind (and a non-zero exit through its command line):

  lost            an acknowledged value removed from the final read
  two-values      a consumer read another value at an acknowledged offset
  duplicate       a value in the final read at a second offset
  order           two of one producer's values swapped in the final read
  stale-read      a consumer read a value the final read does not have
  failed-visible  a definitely failed write present in the final read
  phantom         a value no producer sent in the final read
  replica-divergence  the replica check exited 1
  incomplete      a partition written to but never finally read

It also checks the availability figure (the gap between the last
acknowledgement before a fault and the first after it) on a known history.
No daemon runs; this takes well under a second.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import checker  # noqa: E402


def clean_history():
    h = []
    t = [0.0]

    def ev(**kw):
        t[0] += 0.01
        kw["t"] = t[0]
        h.append(kw)

    offsets = {0: 0, 1: 0}
    values = {0: [], 1: []}
    for seq in range(20):
        for prod in ("p1", "p2", "p3"):
            part = (seq + int(prod[1])) % 2
            v = "%s-%d" % (prod, seq)
            ev(type="invoke", value=v, partition=part)
            ev(type="ok", value=v, partition=part, offset=offsets[part])
            values[part].append(v)
            offsets[part] += 1
        if seq == 10:
            ev(type="nemesis", f="kill-leader", target=1, phase="start")
            t[0] += 5.0  # five seconds without acknowledgements
            ev(type="nemesis", f="kill-leader", target=1, phase="end")
    # A write that failed and one whose outcome is unknown (never written).
    ev(type="invoke", value="p1-20", partition=0)
    ev(type="fail", value="p1-20", error="_PURGE_QUEUE")
    ev(type="invoke", value="p2-20", partition=1)
    ev(type="info", value="p2-20", error="_MSG_TIMED_OUT")
    for part in (0, 1):
        for o, v in enumerate(values[part][:20]):
            ev(type="read", reader="c1", partition=part, offset=o, value=v)
    for part in (0, 1):
        for o, v in enumerate(values[part]):
            ev(type="drain", partition=part, offset=o, value=v)
        ev(type="drained", partition=part, start=0, end=len(values[part]))
    ev(type="replica-check", exit=0, report={"partitions": []})
    return h


def drains(h, part):
    return [e for e in h if e["type"] == "drain" and e["partition"] == part]


def plant_lost(h):
    d = drains(h, 0)[25]  # acknowledged, never read by a consumer
    h.remove(d)
    return d["value"]


def plant_two_values(h):
    r = [e for e in h if e["type"] == "read"][3]
    r["value"] = "p9-999"  # also never sent, but only read: a stale read too
    return None


def plant_duplicate(h):
    d = drains(h, 1)
    i = h.index(d[-1])
    h.insert(i + 1, {"type": "drain", "partition": 1, "offset": d[-1]["offset"] + 1,
                     "value": d[-1]["value"], "t": d[-1]["t"]})
    for e in h:
        if e["type"] == "drained" and e["partition"] == 1:
            e["end"] += 1


def plant_order(h):
    # Two values of one producer in one partition, swapped.
    d = drains(h, 0)
    byprod = {}
    for e in d:
        byprod.setdefault(e["value"].split("-")[0], []).append(e)
    a, b = byprod["p1"][2], byprod["p1"][3]
    a["value"], b["value"] = b["value"], a["value"]
    # Keep the acknowledgements consistent with the swap, so only order is wrong.
    for e in h:
        if e["type"] == "ok" and e["value"] == a["value"]:
            e["offset"] = a["offset"]
        elif e["type"] == "ok" and e["value"] == b["value"]:
            e["offset"] = b["offset"]
    for e in h:
        if e["type"] == "read" and e["partition"] == 0 and e["offset"] in (a["offset"],
                                                                          b["offset"]):
            e["value"] = a["value"] if e["offset"] == a["offset"] else b["value"]


def plant_stale(h):
    # p2-20 (indeterminate) was read by a consumer at offset 30 of partition
    # 1, then is gone from the final read.
    h.append({"type": "read", "reader": "c2", "partition": 1, "offset": 30, "value": "p2-20",
              "t": 0.5})


def plant_failed_visible(h):
    d = drains(h, 0)
    i = h.index(d[-1])
    h.insert(i + 1, {"type": "drain", "partition": 0, "offset": d[-1]["offset"] + 1,
                     "value": "p1-20", "t": d[-1]["t"]})
    for e in h:
        if e["type"] == "drained" and e["partition"] == 0:
            e["end"] += 1


def plant_phantom(h):
    d = drains(h, 0)
    i = h.index(d[-1])
    h.insert(i + 1, {"type": "drain", "partition": 0, "offset": d[-1]["offset"] + 1,
                     "value": "garbage", "t": d[-1]["t"]})
    for e in h:
        if e["type"] == "drained" and e["partition"] == 0:
            e["end"] += 1


def plant_divergence(h):
    for e in h:
        if e["type"] == "replica-check":
            e["exit"] = 1
            e["report"] = {"partitions": [{"topic": "t", "partition": 0, "status": "diverged",
                                           "divergence": {"offset": 7, "kind": "epoch"}}]}


def plant_incomplete(h):
    for e in list(h):
        if e["type"] in ("drain", "drained") and e["partition"] == 1:
            h.remove(e)


CASES = [
    ("lost", plant_lost, {"lost"}),
    ("two-values", plant_two_values, {"two-values", "stale-read"}),
    ("duplicate", plant_duplicate, {"duplicate"}),
    ("order", plant_order, {"order"}),
    ("stale-read", plant_stale, {"stale-read"}),
    ("failed-visible", plant_failed_visible, {"failed-visible"}),
    ("phantom", plant_phantom, {"phantom"}),
    ("replica-divergence", plant_divergence, {"replica-divergence"}),
    ("incomplete", plant_incomplete, {"incomplete"}),
]


def found(res):
    return {k for k, n in res["anomaly_counts"].items() if n}


def cli(history):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for e in history:
            f.write(json.dumps(e) + "\n")
        path = f.name
    try:
        p = subprocess.run([sys.executable, checker.__file__, path], capture_output=True,
                           text=True, timeout=60)
    finally:
        os.unlink(path)
    return p.returncode, p.stdout


def main():
    failures = []
    base = clean_history()
    res = checker.analyze(base)
    if not res["ok"]:
        failures.append("the clean history has anomalies: %s" % found(res))
    c = res["counts"]
    if (c["acknowledged"], c["failed"], c["indeterminate"], c["drained"]) != (60, 1, 1, 60):
        failures.append("clean history counts: %s" % c)
    av = res["availability"].get("kill-leader")
    if not av or av["faults"] != 1 or not 5.0 <= av["max"] < 5.1:
        failures.append("availability after the fault: %s, expected one gap of ~5.0 s" % av)
    rc, out = cli(base)
    if rc != 0:
        failures.append("the command line exits %d on the clean history:\n%s" % (rc, out))
    for name, plant, expect in CASES:
        h = copy.deepcopy(base)
        plant(h)
        res = checker.analyze(h)
        got = found(res)
        if got != expect:
            failures.append("%s: found %s, expected %s\n%s"
                            % (name, sorted(got), sorted(expect), checker.summary_text(res)))
            continue
        rc, out = cli(h)
        if rc != 1 or "ANOMALIES FOUND" not in out:
            failures.append("%s: the command line exits %d:\n%s" % (name, rc, out))
        print("%s: reported (%s)" % (name, ", ".join(sorted(got))))
    if failures:
        for f in failures:
            print("FAIL:", f, file=sys.stderr)
        return 1
    print("PASS: the checker reports each planted anomaly and nothing on the clean history")
    return 0


if __name__ == "__main__":
    sys.exit(main())
