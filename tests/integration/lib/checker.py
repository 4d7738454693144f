# SPDX-License-Identifier: Apache-2.0
"""Analysis of a queue-workload history (after Jepsen's Kafka queue test).

A history is a list of events (dicts), in the order they happened, each
with a monotonic time "t" in seconds:

  {"type": "invoke", "value": V, "partition": P}        a producer sent V
  {"type": "ok", "value": V, "partition": P, "offset": O}
                                                       the broker acknowledged V at P/O
  {"type": "fail", "value": V, "error": E}             V was definitely not written
  {"type": "info", "value": V, "error": E}             indeterminate: V may have been written
  {"type": "read", "reader": R, "partition": P, "offset": O, "value": V}
                                                       a consumer read V at P/O
  {"type": "drain", "partition": P, "offset": O, "value": V}
                                                       the final read, after healing, of every
                                                       partition from its start to its end
  {"type": "drained", "partition": P, "start": S, "end": E}
                                                       the final read of P covered [S, E)
  {"type": "nemesis", "f": F, "target": X, "phase": "start"|"end"}
                                                       a fault began / was healed
  {"type": "replica-check", "exit": N, "report": {...}} tributary-replica-check over
                                                       the brokers' data dirs after a clean stop
  {"type": "note", "what": "producer-fatal", "producer": N, "error": E}
                                                       a producer's client raised a fatal
                                                       error; the workload replaced it

Values are "<producer>-<seq>": one producer instance writes seq 0, 1, 2...
in that order (to several partitions), and never writes a value twice.

Anomalies (analyze()["anomalies"], each a list of findings):

  lost              acknowledged but not in the final read at all (found at
                    another offset it is a two-values and a duplicate finding)
  two-values        one offset seen holding two different values (across
                    acknowledgements, consumer reads and the final read)
  duplicate         one value at two offsets
  order             within one partition, a producer's values at increasing
                    offsets with decreasing seq (final read)
  stale-read        a consumer read a value that the final read does not have
  failed-visible    a value whose write definitely failed, present anyway
  phantom           a value no producer sent
  replica-divergence  the replica check exited 1 (or 2: it could not check)
  incomplete        a partition the final read did not cover up to its end
                    (no verdict is possible then; counted so it is never a pass)

A producer's fatal error (librdkafka gives up on its idempotent
sequence) is not an anomaly in itself: what it had in flight is
indeterminate (its delivery reports are failures the client cannot
vouch for), and a new producer with a new name goes on, as a Jepsen
client is replaced after a crash. It is counted (counts["producer_fatal"],
with the errors under "producer_fatal") so that a run says how often it
happened.

Availability: for each fault (a nemesis start and its end), per partition
the longest gap between consecutive acknowledgements up to the first one
after the fault was healed, starting with the last one before it began;
the fault's figure is its worst partition. Printed as p50/p99 by fault
kind.

Command line: checker.py HISTORY.jsonl [--json OUT]: analyzes a history
saved as JSON lines, prints the summary, exits 1 on any anomaly.
"""
import bisect
import json
import sys


def _pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]


def parse_value(v):
    """("p3", 17) for "p3-17"; None for anything else."""
    if not isinstance(v, str):
        return None
    head, sep, seq = v.rpartition("-")
    if not sep or not head or not seq.isdigit():
        return None
    return head, int(seq)


def analyze(history, limit=20):
    """The verdict on a history: a dict with counts, anomalies, availability, ok."""
    sent = set()
    acked = {}  # value -> (p, o)
    acked_unplaced = set()  # values acknowledged without a partition and offset
    failed = set()
    indeterminate = set()
    reads = []  # (reader, p, o, v)
    drain = {}  # (p, o) -> [values]
    drained = {}  # p -> (start, end)
    seen_at = {}  # (p, o) -> {value: [sources]}
    checks = []
    faults = []
    ends = []
    acks_t = []  # (t, p)
    fatal = []  # the producer-fatal notes

    def saw(p, o, v, src):
        seen_at.setdefault((p, o), {}).setdefault(v, []).append(src)

    for e in history:
        ty = e.get("type")
        if ty == "invoke":
            sent.add(e["value"])
        elif ty == "ok":
            v, p, o = e["value"], e.get("partition"), e.get("offset")
            if p is None or o is None or o < 0:
                # Acknowledged without a place (the client gave none): judged
                # by whether the value is anywhere in the final read.
                acked_unplaced.add(v)
                continue
            if v in acked and acked[v] != (p, o):
                saw(p, o, v, "ack")  # acknowledged twice, at two places
            acked[v] = (p, o)
            saw(p, o, v, "ack")
            acks_t.append((e.get("t", 0.0), p))
        elif ty == "fail":
            failed.add(e["value"])
        elif ty == "info":
            indeterminate.add(e["value"])
        elif ty == "read":
            p, o, v = e["partition"], e["offset"], e["value"]
            reads.append((e.get("reader", "?"), p, o, v))
            saw(p, o, v, "read:%s" % e.get("reader", "?"))
        elif ty == "drain":
            p, o, v = e["partition"], e["offset"], e["value"]
            if v not in drain.setdefault((p, o), []):
                drain[(p, o)].append(v)
                saw(p, o, v, "drain")
        elif ty == "drained":
            drained[e["partition"]] = (e["start"], e["end"])
        elif ty == "note" and e.get("what") == "producer-fatal":
            fatal.append({"producer": e.get("producer"), "error": e.get("error"),
                          "t": e.get("t")})
        elif ty == "nemesis":
            if e.get("phase", "start") == "start":
                faults.append(e)
            else:
                ends.append(e)
        elif ty == "replica-check":
            checks.append(e)

    an = {k: [] for k in ("lost", "two-values", "duplicate", "order", "stale-read",
                          "failed-visible", "phantom", "replica-divergence", "incomplete")}
    drained_values = {}  # value -> [(p, o)]
    for (p, o), vs in drain.items():
        for v in vs:
            drained_values.setdefault(v, []).append((p, o))
    partitions = set(p for (p, _o) in seen_at) | set(drained)

    # A verdict needs the final read of every partition written or read.
    for p in sorted(partitions):
        if p not in drained:
            an["incomplete"].append({"partition": p, "why": "the final read did not cover it"})

    def covered(p, o):
        return p in drained and drained[p][0] <= o < drained[p][1]

    # Lost: acknowledged, and not in the final read at all (an acknowledged
    # value found at another offset is a two-values and a duplicate finding).
    for v, (p, o) in sorted(acked.items(), key=lambda kv: (kv[1], kv[0])):
        if v in drained_values or p not in drained:
            continue  # present; or "incomplete" already
        if o < drained[p][0]:
            continue  # below the log start (retention): not checkable
        an["lost"].append({"value": v, "partition": p, "offset": o,
                           "there": drain.get((p, o), []),
                           "drained": list(drained[p])})

    if not an["incomplete"]:
        for v in sorted(acked_unplaced - set(acked)):
            if v not in drained_values:
                an["lost"].append({"value": v, "partition": None, "offset": None,
                                   "there": [], "drained": None})

    for (p, o), vals in sorted(seen_at.items()):
        if len(vals) > 1:
            an["two-values"].append({"partition": p, "offset": o,
                                     "values": {v: sorted(set(s)) for v, s in vals.items()}})

    # Duplicate: one value at two offsets anywhere (acks, reads, final read).
    places = {}
    for (p, o), vals in seen_at.items():
        for v in vals:
            places.setdefault(v, set()).add((p, o))
    for v, ps in sorted(places.items()):
        if len(ps) > 1:
            an["duplicate"].append({"value": v, "at": sorted(ps)})

    # Order: per partition, per producer, seq increases with offset.
    by_part = {}
    for (p, o), vs in drain.items():
        for v in vs:
            pv = parse_value(v)
            if pv:
                by_part.setdefault(p, []).append((o, pv[0], pv[1], v))
    for p, items in sorted(by_part.items()):
        items.sort()
        last = {}
        for o, prod, seq, v in items:
            if prod in last and seq < last[prod][0]:
                an["order"].append({"partition": p, "producer": prod,
                                    "earlier": {"offset": last[prod][1], "value": last[prod][2]},
                                    "later": {"offset": o, "value": v}})
            if prod not in last or seq > last[prod][0]:
                last[prod] = (seq, o, v)

    # Stale read: read by a consumer, absent from the final read.
    seen_stale = set()
    for reader, p, o, v in reads:
        if p not in drained or o < drained[p][0]:
            continue
        if v not in drained_values and (p, o, v) not in seen_stale:
            seen_stale.add((p, o, v))
            an["stale-read"].append({"reader": reader, "partition": p, "offset": o, "value": v,
                                     "there": drain.get((p, o), [])})

    for v in sorted(failed):
        if v in drained_values:
            an["failed-visible"].append({"value": v, "at": drained_values[v]})
    for v in sorted(drained_values):
        if v not in sent:
            an["phantom"].append({"value": v, "at": drained_values[v]})

    for c in checks:
        if c.get("exit") != 0:
            an["replica-divergence"].append({"exit": c.get("exit"),
                                             "diverged": _divergences(c.get("report"))})

    # Availability: per fault and partition, the longest gap between two
    # consecutive acknowledgements where the later one comes after the
    # fault began and no later than the first one after it was healed (a
    # few acknowledgements of requests answered before the fault may still
    # arrive after it began). The fault's figure is its worst partition.
    acks_t.sort()
    by_p = {}
    for t, p in acks_t:
        by_p.setdefault(p, []).append(t)
    avail = {}
    for f in faults:
        t0 = f.get("t", 0.0)
        t1 = t0
        for e2 in ends:
            if e2.get("t", 0.0) >= t0 and e2.get("f") == f.get("f") and \
                    e2.get("target") == f.get("target"):
                t1 = e2["t"]
                break
        worst = None
        for p, ts in by_p.items():
            i = bisect.bisect_right(ts, t0)
            j = bisect.bisect_right(ts, t1)
            if i == 0 or j >= len(ts):
                continue  # no ack before it, or none after it (the end of the run)
            gap = max(ts[k] - ts[k - 1] for k in range(i, j + 1))
            worst = gap if worst is None or gap > worst else worst
        if worst is not None:
            avail.setdefault(f.get("f", "?"), []).append(worst)
    availability = {k: {"faults": len(v), "p50": _pct(v, 0.5), "p99": _pct(v, 0.99),
                        "max": max(v)} for k, v in sorted(avail.items())}

    counts = {"sent": len(sent), "acknowledged": len(acked) + len(acked_unplaced - set(acked)),
              "failed": len(failed),
              "indeterminate": len(indeterminate), "reads": len(reads),
              "drained": sum(len(v) for v in drain.values()), "partitions": len(partitions),
              "faults": len(faults), "replica_checks": len(checks)}
    # Indeterminate writes found in the final read (recovered), for the record.
    counts["indeterminate_present"] = sum(1 for v in indeterminate if v in drained_values)
    counts["producer_fatal"] = len(fatal)
    total = {k: len(v) for k, v in an.items()}
    return {"ok": not any(total.values()), "counts": counts, "anomaly_counts": total,
            "anomalies": {k: v[:limit] for k, v in an.items()}, "availability": availability,
            "producer_fatal": fatal[:limit]}


def _divergences(report):
    if not isinstance(report, dict):
        return []
    return [{"topic": p.get("topic"), "partition": p.get("partition"),
             "divergence": p.get("divergence")}
            for p in report.get("partitions", []) if p.get("status") != "identical"]


def summary_text(res):
    c = res["counts"]
    lines = ["checker: %s" % ("OK: no anomaly" if res["ok"] else "ANOMALIES FOUND"),
             "  writes: %d sent, %d acknowledged, %d definitely failed, %d indeterminate "
             "(%d of them present)" % (c["sent"], c["acknowledged"], c["failed"],
                                        c["indeterminate"], c["indeterminate_present"]),
             "  reads: %d by consumers, %d in the final read of %d partitions; %d faults, "
             "%d replica checks" % (c["reads"], c["drained"], c["partitions"], c["faults"],
                                    c["replica_checks"])]
    lines.append("  anomalies: " + ", ".join("%s %d" % (k, v)
                                             for k, v in res["anomaly_counts"].items()))
    for k, items in res["anomalies"].items():
        for it in items[:5]:
            lines.append("    %s: %s" % (k, json.dumps(it, sort_keys=True)))
    if c.get("producer_fatal"):
        lines.append("  producers replaced after a fatal client error: %d (not an anomaly; "
                     "their writes in flight are indeterminate)" % c["producer_fatal"])
        for it in res.get("producer_fatal", [])[:5]:
            lines.append("    %s at %.1fs: %s" % (it.get("producer"), it.get("t") or 0.0,
                                                  it.get("error")))
    for kind, a in res["availability"].items():
        lines.append("  unavailability after %s (%d faults): p50 %.2fs, p99 %.2fs, max %.2fs"
                     % (kind, a["faults"], a["p50"], a["p99"], a["max"]))
    return "\n".join(lines)


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    res = analyze(load(argv[0]))
    if "--json" in argv:
        with open(argv[argv.index("--json") + 1], "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    print(summary_text(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
