#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""scripts/lib/ctest-summary.py against real ctest JUnit files.

Builds two throwaway ctest projects in --work, runs them with
ctest --output-junit and checks what the summarizer prints and returns:

  mixed   a pass, a failure, a skip the allow list allows, a skip it does
          not, a skip with no "SKIP:" reason, and a cmocka program (run by
          tests/unit/cmocka-run.sh) that passes, skips and fails
  clean   a pass and an allowed skip

Exit 0 when every check holds, 1 otherwise.
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SUMMARY = os.path.join(ROOT, "scripts", "lib", "ctest-summary.py")
CMOCKA_RUN = os.path.join(ROOT, "tests", "unit", "cmocka-run.sh")

failures = []


def check(cond, what, output=""):
    if cond:
        print("ok: %s" % what)
    else:
        print("FAIL: %s" % what)
        if output:
            print("----- output -----\n%s\n------------------" % output)
        failures.append(what)


def cmake_list(args):
    return " ".join('"%s"' % a.replace('"', '\\"') for a in args)


def project(cmake, ctest, work, name, tests):
    """Writes, configures and runs a ctest project; returns its JUnit path."""
    src = os.path.join(work, name)
    os.makedirs(src)
    lines = ["cmake_minimum_required(VERSION 3.20)", "project(%s NONE)" % name,
             "enable_testing()"]
    for tname, cmd, skip_code in tests:
        lines.append("add_test(NAME %s COMMAND %s)" % (tname, cmake_list(cmd)))
        if skip_code:
            lines.append("set_tests_properties(%s PROPERTIES SKIP_RETURN_CODE 77)" % tname)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    b = os.path.join(src, "b")
    subprocess.run([cmake, "-S", src, "-B", b], check=True, stdout=subprocess.DEVNULL)
    junit = os.path.join(work, name + ".xml")
    subprocess.run([ctest, "--test-dir", b, "--output-junit", junit], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return junit


def summary(*args):
    p = subprocess.run(["/usr/bin/python3", SUMMARY] + list(args), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmake", required=True)
    ap.add_argument("--ctest", required=True)
    ap.add_argument("--probe", required=True, help="the cmocka_skip_probe program")
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)

    def sh(script):
        return ["sh", "-c", script]

    def cmocka(*args):
        return ["bash", CMOCKA_RUN, a.probe] + list(args)

    allowed_skip = ("s.skip.allowed",
                    sh('echo "[s] SKIP: no schemas at /x/kafka-protocol/message"; exit 77'), True)
    mixed = project(a.cmake, a.ctest, a.work, "mixed", [
        ("s.pass", sh("echo fine"), False),
        ("s.fail", sh("echo broken; exit 1"), False),
        allowed_skip,
        ("s.skip.required", sh('echo "[s] SKIP: kcat is not installed" >&2; exit 77'), True),
        ("s.skip.silent", sh("exit 77"), True),
        ("s.cmocka.pass", cmocka(), True),
        ("s.cmocka.skip", cmocka("--skip"), True),
        ("s.cmocka.fail", cmocka("--fail"), True),
    ])
    clean = project(a.cmake, a.ctest, a.work, "clean", [
        ("s.pass", sh("echo fine"), False),
        allowed_skip,
    ])
    allow = os.path.join(a.work, "allow.txt")
    with open(allow, "w") as f:
        f.write("# comment\n\n"
                "s\\.skip\\.allowed ;; ^no schemas at ;; the schemas are not beside the checkout\n"
                "s\\.cmocka\\.skip ;; the probe was asked to skip ;; the probe skips on request\n"
                "s\\.skip ;; kcat ;; matches the whole name only, not s.skip.required\n")
    empty = os.path.join(a.work, "empty.txt")
    open(empty, "w").close()

    rc, out = summary("--allow", allow, "mixed=" + mixed)
    check(rc == 1, "mixed: exit status 1 (got %d)" % rc, out)
    check("mixed: 2 passed, 2 failed, 4 skipped" in out, "mixed: counts per run", out)
    check(out.rstrip().endswith("total: 2 passed, 2 failed, 4 skipped"),
          "mixed: last line is the total", out)
    check("FAILED   s.fail" in out and "FAILED   s.cmocka.fail" in out,
          "mixed: both failures listed", out)
    check("SKIPPED  s.skip.allowed: no schemas at /x/kafka-protocol/message  [allowed by %s:3]"
          % allow in out, "mixed: the allowed skip, its reason and its allow-list line", out)
    check("s.skip.required skipped (kcat is not installed) and %s does not allow it" % allow
          in out, "mixed: the skip that is not allowed, named with its reason", out)
    check("s.skip.silent skipped without printing a reason" in out,
          "mixed: a skip without a reason fails", out)
    check("SKIPPED  s.cmocka.skip: the probe was asked to skip (skipped: test_maybe)" in out
          and "s.cmocka.skip skipped" not in out,
          "mixed: a cmocka skip() is a ctest skip with the test's reason, allowed", out)
    check("s.cmocka.pass" not in out, "mixed: the passing cmocka program is a pass", out)

    rc, out = summary("--allow", allow, "clean=" + clean)
    check(rc == 0, "clean: exit status 0 (got %d)" % rc, out)
    check(out.rstrip().endswith("total: 1 passed, 0 failed, 1 skipped"), "clean: total", out)

    rc, out = summary("--allow", empty, "clean=" + clean)
    check(rc == 1 and "clean: s.skip.allowed skipped (no schemas at /x/kafka-protocol/message) "
          "and %s does not allow it" % empty in out,
          "clean with an empty allow list: the skip fails the run", out)

    rc, out = summary("--allow", allow, "clean=" + clean, "mixed=" + mixed)
    check(rc == 1 and "clean: 1 passed, 0 failed, 1 skipped" in out
          and out.rstrip().endswith("total: 3 passed, 2 failed, 5 skipped"),
          "two runs: counted per run and in total", out)

    rc, out = summary("--allow", allow, "--note", "build-asan: BUILD FAILED", "clean=" + clean)
    check(rc == 1 and "build-asan: BUILD FAILED" in out, "a note fails the run", out)

    rc, out = summary("--allow", allow, "gone=" + os.path.join(a.work, "missing.xml"))
    check(rc == 1 and "gone: no test results" in out, "a missing JUnit file fails the run", out)

    bad = os.path.join(a.work, "bad.txt")
    with open(bad, "w") as f:
        f.write("# header\ns\\.pass ;; reason only\n")
    rc, out = summary("--allow", bad, "clean=" + clean)
    check(rc == 2 and "%s:2:" % bad in out, "a bad allow-list line is named by file and line",
          out)

    if failures:
        print("%d checks failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
