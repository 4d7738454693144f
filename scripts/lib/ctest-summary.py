#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Summarizes ctest runs from their JUnit files (ctest --output-junit).

    ctest-summary.py [--allow FILE] [--note TEXT]... NAME=JUNIT...

Each NAME=JUNIT is one ctest run (NAME is what the summary calls it, e.g.
"build-asan"). A test counts as
  passed   status "run";
  failed   status "fail", or "notrun" for any other cause than a skip
           (a failed fixture, a missing executable), as ctest counts it;
  skipped  status "notrun" with SKIP_RETURN_CODE or SKIP_REGULAR_EXPRESSION.
ctest's own "N% tests passed" counts a skip as a pass; this does not.

A skipped test must have printed its reason on a line holding "SKIP: "
(the last such line is the reason). A skip is allowed only when the allow
list (FILE) has a line whose test regex matches the whole test name and
whose reason regex is found in the reason; a skip without a reason is never
allowed. Allow-list lines are

    TEST-REGEX ;; REASON-REGEX ;; WHY IT MAY SKIP

(blank lines and lines starting with '#' are ignored).

Prints per run and in total the passed, failed and skipped counts, the
failed tests, every skipped test with its reason, and why the whole run
fails if it does; the last line is "total: N passed, N failed, N skipped".
--note TEXT adds a line to the summary and fails the run (a build that
failed, say). Exit status 0 when nothing failed and every skip is allowed,
1 otherwise, 2 on bad usage or a bad allow-list.
"""
import re
import sys
import xml.etree.ElementTree as ET

SKIP_LINE = re.compile(r"SKIP:\s*(.*\S)")
SKIP_CAUSES = ("SKIP_RETURN_CODE", "SKIP_REGULAR_EXPRESSION")


class UsageError(Exception):
    pass


def load_allow(path):
    """[(test_re, reason_re, why, "file:line")]; UsageError naming file and line."""
    rules = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UsageError("%s: %s" % (path, e.strerror))
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [x.strip() for x in line.split(";;")]
        if len(fields) != 3 or not all(fields):
            raise UsageError("%s:%d: expected 'TEST-REGEX ;; REASON-REGEX ;; WHY', "
                             "three non-empty fields" % (path, n))
        try:
            test_re = re.compile(fields[0])
        except re.error as e:
            raise UsageError("%s:%d: test regex: %s" % (path, n, e))
        try:
            reason_re = re.compile(fields[1])
        except re.error as e:
            raise UsageError("%s:%d: reason regex: %s" % (path, n, e))
        rules.append((test_re, reason_re, fields[2], "%s:%d" % (path, n)))
    return rules


def skip_reason(output):
    reasons = SKIP_LINE.findall(output or "")
    return reasons[-1] if reasons else None


def read_junit(path):
    """[(name, state, detail)], state "passed", "failed" or "skipped"."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise UsageError("%s: no readable ctest results (%s)" % (path, e))
    out = []
    for tc in root.iter("testcase"):
        name = tc.get("name", "?")
        status = tc.get("status", "")
        text = tc.findtext("system-out") or ""
        skipped = tc.find("skipped")
        if status == "run":
            out.append((name, "passed", None))
        elif status == "notrun" and skipped is not None and \
                skipped.get("message", "").startswith(SKIP_CAUSES):
            out.append((name, "skipped", skip_reason(text)))
        elif status == "notrun":
            why = skipped.get("message") if skipped is not None else "not run"
            out.append((name, "failed", why or "not run"))
        else:
            out.append((name, "failed", None))
    return out


def allowed(rules, name, reason):
    if reason is None:
        return None
    for test_re, reason_re, _why, where in rules:
        if test_re.fullmatch(name) and reason_re.search(reason):
            return where
    return None


def summarize(runs, rules, notes, allow_path):
    """Lines of the summary and the exit status."""
    lines = []
    bad = []
    total = {"passed": 0, "failed": 0, "skipped": 0}
    for label, path in runs:
        try:
            results = read_junit(path)
        except UsageError as e:
            lines.append("%s: %s" % (label, e))
            bad.append("%s: no test results" % label)
            continue
        count = {"passed": 0, "failed": 0, "skipped": 0}
        for _name, state, _d in results:
            count[state] += 1
            total[state] += 1
        lines.append("%s: %d passed, %d failed, %d skipped" % (
            label, count["passed"], count["failed"], count["skipped"]))
        if not results:
            lines.append("  no tests ran")
            bad.append("%s: no tests ran" % label)
        for name, state, detail in results:
            if state == "failed":
                lines.append("  FAILED   %s%s" % (name, " (%s)" % detail if detail else ""))
                bad.append("%s: %s failed" % (label, name))
        for name, state, reason in results:
            if state != "skipped":
                continue
            where = allowed(rules, name, reason)
            if reason is None:
                lines.append("  SKIPPED  %s: printed no 'SKIP: reason' line  [NOT ALLOWED]" % name)
                bad.append("%s: %s skipped without printing a reason" % (label, name))
            elif where:
                lines.append("  SKIPPED  %s: %s  [allowed by %s]" % (name, reason, where))
            else:
                lines.append("  SKIPPED  %s: %s  [NOT ALLOWED]" % (name, reason))
                bad.append("%s: %s skipped (%s) and %s does not allow it"
                           % (label, name, reason, allow_path or "no allow list"))
    for note in notes:
        lines.append(note)
        bad.append(note)
    if bad:
        lines.append("FAILED because:")
        lines.extend("  " + b for b in bad)
    lines.append("total: %d passed, %d failed, %d skipped"
                 % (total["passed"], total["failed"], total["skipped"]))
    return lines, (1 if bad else 0)


def main(argv):
    allow_path = None
    notes = []
    runs = []
    it = iter(argv)
    try:
        for a in it:
            if a == "--allow":
                allow_path = next(it)
            elif a == "--note":
                notes.append(next(it))
            elif a in ("-h", "--help"):
                print(__doc__.strip())
                return 0
            elif "=" in a and not a.startswith("-"):
                runs.append(tuple(a.split("=", 1)))
            else:
                raise UsageError("unknown argument '%s'" % a)
        if not runs and not notes:
            raise UsageError("no NAME=JUNIT given")
        rules = load_allow(allow_path) if allow_path else []
    except StopIteration:
        print("ctest-summary: %s needs a value" % a, file=sys.stderr)
        return 2
    except UsageError as e:
        print("ctest-summary: %s" % e, file=sys.stderr)
        return 2
    lines, rc = summarize(runs, rules, notes, allow_path)
    print("\n".join(lines))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
