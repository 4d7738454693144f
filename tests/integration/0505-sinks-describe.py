# SPDX-License-Identifier: Apache-2.0
"""Sinks 0505: the plugins document themselves, and the docs follow.

- `tributary-collector --list-sinks` lists every plugin built
  (clickhouse, file, http, postgres, stdout) with its file;
- `--describe-sink TYPE` prints, for each option of the plugin's schema,
  "NAME: TYPE, default ..." and a description (none missing), and for
  postgres and clickhouse the table layout with its key;
- every option of every plugin is named in conf/collector.yaml and in the
  collector's man page;
- `--describe-sink nosuch` exits 2 listing the types found;
- a misspelt postgres option fails `--check-config` at its file:line:col
  with the valid keys listed.
No collector is started.
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import COLLECTOR, ROOT, Skip, TestFailure, log  # noqa: E402

TYPES = ["clickhouse", "file", "http", "postgres", "stdout"]


def run(*args):
    p = subprocess.run([COLLECTOR] + list(args), capture_output=True, text=True, timeout=60)
    if "Sanitizer" in p.stderr:
        raise TestFailure("tributary-collector %s: a sanitizer report:\n%s"
                          % (" ".join(args), p.stderr))
    return p


def main():
    if not os.access(COLLECTOR, os.X_OK):
        raise Skip("%s is not built" % COLLECTOR)
    p = run("--list-sinks")
    if p.returncode != 0:
        raise TestFailure("--list-sinks: exit %d: %s" % (p.returncode, p.stderr))
    listed = [l.split()[0] for l in p.stdout.splitlines() if l and not l[0].isspace()
              and not l.startswith("Options")]
    if listed != TYPES:
        raise TestFailure("--list-sinks lists %r, not %r" % (listed, TYPES))
    for t in TYPES:
        if not re.search(r"\(\S*/%s\.so\)" % t, p.stdout):
            raise TestFailure("--list-sinks does not name %s.so" % t)
    conf = open(os.path.join(ROOT, "conf", "collector.yaml")).read()
    man = open(os.path.join(ROOT, "packaging", "man", "tributary-collector.8")).read()
    for t in TYPES:
        p = run("--describe-sink", t)
        if p.returncode != 0 or not p.stdout.startswith(t + ": "):
            raise TestFailure("--describe-sink %s: exit %d: %r" % (t, p.returncode, p.stdout))
        opts = re.findall(r"^  ([a-z_]+): (boolean|integer|string|duration|size|one of [a-z_|]+)"
                          r"(, required|, default [^,\n]+)", p.stdout, re.M)
        if not opts:
            raise TestFailure("--describe-sink %s lists no options: %r" % (t, p.stdout))
        if "(no description)" in p.stdout:
            raise TestFailure("--describe-sink %s: an option has no description:\n%s"
                              % (t, p.stdout))
        for name, _, _ in opts:
            if not re.search(r"^#\s+%s:" % name, conf, re.M):
                raise TestFailure("conf/collector.yaml does not document %s's option %s"
                                  % (t, name))
            if not re.search(r"\b%s\b" % name.replace("_", r"\\?_"), man):
                raise TestFailure("the man page does not document %s's option %s" % (t, name))
        log("%s: %d options" % (t, len(opts)))
    pg = run("--describe-sink", "postgres").stdout
    if 'PRIMARY KEY (topic, "partition", "offset")' not in pg or "jsonb" not in pg:
        raise TestFailure("--describe-sink postgres does not show the table it needs")
    ch = run("--describe-sink", "clickhouse").stdout
    if "ReplacingMergeTree() ORDER BY event_id" not in ch:
        raise TestFailure("--describe-sink clickhouse does not show the table it needs")
    p = run("--describe-sink", "nosuch")
    if p.returncode != 2 or "sink types found: " + " ".join(TYPES) not in p.stderr:
        raise TestFailure("--describe-sink nosuch: exit %d: %r" % (p.returncode, p.stderr))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bad.yaml")
        with open(path, "w") as f:
            f.write("sinks:\n  - name: pg\n    type: postgres\n    topics: [x]\n"
                    "    options:\n      conninfo: \"host=127.0.0.1\"\n      tabel: t\n")
        p = run("-c", path, "--check-config")
        want = ("bad.yaml:7:7: error: unknown key 'tabel' in sinks[0].options (did you mean "
                "'table'?); valid keys: conninfo, table, columns, create_table, connect_timeout, "
                "statement_timeout")
        if p.returncode != 2 or want not in p.stderr:
            raise TestFailure("a misspelt option: exit %d: %r" % (p.returncode, p.stderr))


try:
    main()
except Skip as e:
    log("SKIP: %s" % e)
    sys.exit(77)
except TestFailure as e:
    log("FAIL: %s" % e)
    sys.exit(1)
log("PASS")
