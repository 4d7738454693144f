#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-cluster: produce throughput on a local cluster beside a
single-node collector, in one run.

    tributary-bench-cluster [--brokers 3] [--runs 3] [--records N] [--mbytes N]
                            [--sizes 100] [--replication-factors 1,3]
                            [--min-insync 2] [--session-timeout 6s]
                            [--warmup 1]
                            [--repo DIR] [--bin DIR]

It starts one ZooKeeper and N collectors on 127.0.0.1 (tests/integration/
lib/zk_cluster.py, as scripts/cluster does) and, for each run, in turn:
  1. `tributary-bench-produce --collector` on a fresh single-node collector
     (the local backend): acks=all, replication factor 1;
  2. `tributary-bench-produce --bootstrap LIST --collector-pid PIDS` on the
     cluster: acks=all, a new topic per replication factor (default 1 and
     3, min.insync.replicas 2 or the factor when smaller), the factors back
     to back.
Each pass is librdkafka producing --records 100-byte records (--mbytes MB
of larger ones), 6 partitions, no consumer passes. It prints each run's
MB/s and collectors' CPU seconds, the medians, and two ratios as medians of
the runs' own ratios (each run measures both sides under the same load):
  cluster RF 1 / single node        (target: at least 0.9)
  cluster RF F / cluster RF 1       (for RF 3 acks=all, target at least 0.35)
The collectors of the cluster share the machine's CPUs with each other
and with the producer; figures are only comparable within one run.
Every pass deletes its topic when done (tributary-bench-produce
--delete-topics), and --warmup runs (default 1) go first and are not
counted: the passes then write into page cache that earlier passes gave
back. On a VM whose host backs guest memory only when the guest first
touches it, writing into never-touched memory is several times slower
(dd to a fresh file on a newly booted 2-vCPU VM: 281 MB/s the first time,
1.2-1.7 GB/s once the memory had been touched), and without this the
pass that writes the most bytes, RF 3, would pay for it most.
It prints figures; it asserts nothing. A factor whose topic cannot be
created (a cluster without replication refuses RF 3) is reported as not
measured and the exit status is 1.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))


def source_dir(bindir):
    """build/bin -> the source tree, through CMakeCache.txt."""
    cache = os.path.join(bindir, "..", "CMakeCache.txt")
    with open(cache) as f:
        for line in f:
            if line.startswith("tributary_SOURCE_DIR:STATIC="):
                return line.split("=", 1)[1].strip()
    raise SystemExit("tributary-bench-cluster: no tributary_SOURCE_DIR in %s; use --repo" % cache)


def median_line(out, name):
    """(MB/s, collector CPU s) of the '<name> median' line of tributary-bench-produce."""
    for line in out.splitlines():
        if line.startswith(name + " median"):
            f = line[len(name + " median"):].split()
            return float(f[2]), float(f[6])
    return None


def run_bench(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    return p.returncode, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--mbytes", type=int, default=256)
    ap.add_argument("--sizes", default="100")
    ap.add_argument("--replication-factors", default="1,3")
    ap.add_argument("--min-insync", type=int, default=2)
    ap.add_argument("--session-timeout", default="6s")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repo", default=os.environ.get("TRIB_REPO", ""))
    ap.add_argument("--bin", default=HERE)
    a = ap.parse_args()
    rfs = [int(x) for x in a.replication_factors.split(",") if x]
    sizes = [int(x) for x in a.sizes.split(",") if x]
    if not rfs or rfs[0] != 1 or a.runs < 1 or not sizes:
        ap.error("--replication-factors must start with 1; --runs and --sizes must be given")
    bindir = os.path.abspath(a.bin)
    repo = a.repo or source_dir(bindir)
    os.environ["TRIB_BIN_DIR"] = bindir
    sys.path.insert(0, os.path.join(repo, "tests", "integration", "lib"))
    import tributary_harness as th
    th.log = lambda msg: None
    import zk_cluster
    zk_cluster.log = lambda msg: None

    bench = os.path.join(bindir, "tributary-bench-produce")
    common = ["--runs", "1", "--records", str(a.records), "--mbytes", str(a.mbytes),
              "--sizes", a.sizes, "--acks", "all", "--no-consume", "--no-baseline", "--delete-topics"]
    print("tributary-bench-cluster: %d brokers (session timeout %s), %d runs, sizes %s, "
          "acks=all, replication factors %s, min.insync.replicas %d (at most the factor); "
          "%d CPUs" % (a.brokers, a.session_timeout, a.runs, a.sizes,
                       ",".join(map(str, rfs)), a.min_insync, os.cpu_count()))
    rc = 0
    # results[size]["single"|rf] = [(MB/s, CPU s) per run]
    results = {s: {k: [] for k in ["single"] + rfs} for s in sizes}
    with zk_cluster.Cluster(brokers=a.brokers, session_timeout=a.session_timeout,
                            root=tempfile.mkdtemp(prefix="trib-bench-cluster.")) as cl:
        cl.start()
        cl.wait_controller(timeout=120)
        boot = cl.bootstrap()
        pids = ",".join(str(b.proc.pid) for b in cl.live())
        print("cluster: bootstrap %s, collector pids %s" % (boot, pids))
        for r in range(-a.warmup, a.runs):
            st, out, err = run_bench([bench, "--collector",
                                      os.path.join(bindir, "tributary-collector")] + common)
            if st != 0:
                sys.stderr.write(out + err)
                raise SystemExit("single-node pass failed (status %d)" % st)
            for s in sizes:
                results[s]["single"].append(median_line(out, "produce %dB acks=all" % s))
            st, out, err = run_bench([bench, "--bootstrap", boot, "--collector-pid", pids,
                                      "--replication-factors", ",".join(map(str, rfs)),
                                      "--min-insync", str(a.min_insync)] + common)
            if st != 0:
                rc = 1
                sys.stderr.write(err)
            for s in sizes:
                for f in rfs:
                    results[s][f].append(median_line(out, "produce %dB acks=all rf%d" % (s, f)))
            line = "run %d:" % (r + 1) if r >= 0 else "warm-up run (not counted):"
            for s in sizes:
                for k in ["single"] + rfs:
                    v = results[s][k][-1]
                    line += " %dB %s %s;" % (s, "single-node" if k == "single" else "rf%d" % k,
                                             "%.1f MB/s (%.2f CPU-s)" % v if v else "not measured")
            print(line.rstrip(";"))
            sys.stdout.flush()
            if r < 0:
                for s in sizes:
                    for k in ["single"] + rfs:
                        results[s][k].pop()
    print("medians over %d runs:" % a.runs)
    for s in sizes:
        res = results[s]
        for k in ["single"] + rfs:
            got = [v for v in res[k] if v]
            name = "single-node collector, rf1" if k == "single" else "cluster rf%d" % k
            if got:
                print("  %dB acks=all %-28s %8.1f MB/s  collectors %.2f CPU-s"
                      % (s, name, statistics.median(v[0] for v in got),
                         statistics.median(v[1] for v in got)))
            else:
                print("  %dB acks=all %-28s not measured" % (s, name))

        def ratio(num, den):
            rs = [n[0] / d[0] for n, d in zip(res[num], res[den]) if n and d and d[0] > 0]
            return statistics.median(rs) if rs else None
        r1 = ratio(1, "single")
        print("  %dB cluster rf1 / single node: %s (target >= 0.9)"
              % (s, "%.2fx" % r1 if r1 is not None else "not measured"))
        for f in rfs[1:]:
            rf = ratio(f, 1)
            print("  %dB cluster rf%d / cluster rf1 (acks=all): %s (target >= 0.35 for rf3)"
                  % (s, f, "%.2fx" % rf if rf is not None else "not measured"))
    return rc


if __name__ == "__main__":
    sys.exit(main())
