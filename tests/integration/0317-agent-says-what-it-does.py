# SPDX-License-Identifier: Apache-2.0
"""The agent says what it does.

A tail input with two path patterns, one matching a file and one matching
nothing, a regex parse step with types and on_parse_error: route.
  - its log, at info, names the file opened with its offset (0, then at
    the restart, grown meanwhile, its checkpoint), the pattern matching nothing once however
    many scans ran, and the rotation (rename) of the file;
  - a line the regex does not match arrives in parse_error_topic marked
    parse_error: true and parse_error_by: "regex"; parsed lines arrive in
    the topic with status as a number (types); the per-input metrics
    count them with pipeline and input labels;
  - `tributary-agent status` prints health, output, the input and each
    file with offset, acknowledged offset, size and lag;
  - with the collector stopped and a line waiting, /health turns 503
    "degraded: all brokers down"; each refused connection is logged once (librdkafka's line, not
    again through the error callback); once the collector is back the log
    says the brokers are reachable again and /health is 200;
  - SIGHUP with another path pattern logs the input as changed;
  - `--dry-run --input FILE` beside the running agent (its state_dir
    locked) prints the file's lines parsed, typed and routed;
  - a state_dir whose parents do not exist is created.
"""
import importlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
TOPIC = "agent.say"
BAD = "agent.say.unparsed"
PORT = agentlib.free_port()


def health(mport):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % mport, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def log_text(a, run=None):
    with open(a.log_path(run)) as f:
        return f.read()


def status(a):
    r = subprocess.run([agentlib.AGENT, "status", "-c", a.conf], capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        raise TestFailure("status: %d %s" % (r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def main(c):
    agentlib.require_kcat()
    d = os.path.join(c.tmp, "logs")
    os.makedirs(d)
    path = os.path.join(d, "app.log")
    nothing = os.path.join(d, "none-*.txt")
    lines = ["GET /a 200", "GET /b 404", "this line is not a request", "POST /c 500"]
    with open(path, "w") as f:
        f.write("".join(ln + "\n" for ln in lines))
    mport = agentlib.free_port()
    pipelines = """
  - name: web
    inputs:
      - {type: tail, id: web-in, paths: ["%s", "%s"], scan_interval: 100ms,
         poll_interval: 50ms, rotate_wait: 200ms}
    parse:
      - type: regex
        pattern: '^(?<method>[A-Z]+) (?<path>\\S+) (?<status>\\d+)$'
        types: {status: int}
    on_parse_error: route
    parse_error_topic: %s
    topic: %s
""" % (path, nothing, BAD, TOPIC)
    a = agentlib.Agent(c.tmp, c.bootstrap, pipelines,
                       agent_extra="  metrics: 127.0.0.1:%d\n" % mport,
                       output_extra="  options: {reconnect.backoff.max.ms: 200}\n")
    with agentlib.guard(a):
        a.start()
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_events_acked_total", 0) >= 4,
                          60, "4 events acknowledged")
        good = agentlib.consume(c.bootstrap, TOPIC)
        bad = agentlib.consume(c.bootstrap, BAD)
        if sorted((e["method"], e["status"]) for e in good) != \
                [("GET", 200), ("GET", 404), ("POST", 500)]:
            raise TestFailure("parsed events (status must be a number): %r" % good)
        if len(bad) != 1 or bad[0]["message"] != lines[2] or bad[0].get("parse_error") is not True \
                or bad[0].get("parse_error_by") != "regex":
            raise TestFailure("the unparsed line, routed and marked: %r" % bad)
        m = a.metrics()
        lab = '{pipeline="web",input="web-in"}'
        want = {"tributary_agent_input_lines_read_total": 4,
                "tributary_agent_input_events_total": 4,
                "tributary_agent_input_parse_failures_total": 1,
                "tributary_agent_input_parse_routed_total": 1}
        for k, v in want.items():
            if m.get(k + lab) != v:
                raise TestFailure("%s%s is %r, not %d" % (k, lab, m.get(k + lab), v))
        # status: the file, read and acknowledged to its end
        size = os.path.getsize(path)
        agentlib.wait_for(lambda: ("file %s offset %d acked %d size %d lag 0"
                                   % (path, size, size, size)) in status(a), 30,
                          "status to show the file acknowledged")
        st = status(a)
        log("status:\n" + st)
        for want_line in ("health ok", "output brokers %s state up" % c.bootstrap,
                          "pipeline web topic %s" % TOPIC, "  input web-in type tail files_open 1",
                          "read 4 events 4 filtered 0 parse_failures 1"):
            if want_line not in st:
                raise TestFailure("status lacks %r:\n%s" % (want_line, st))
        code, body = health(mport)
        if code != 200 or body.strip() != "ok":
            raise TestFailure("/health: %d %r" % (code, body))
        # rotation: the log names it, and the new file opened at 0
        os.rename(path, path + ".1")
        with open(path, "w") as f:
            f.write("GET /d 201\n")
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_events_acked_total", 0) >= 5,
                          60, "the event of the new file")
        agentlib.wait_for(lambda: "was rotated or removed" in log_text(a), 30,
                          "the rotation in the log")
        text = log_text(a)
        if text.count("input web-in: opened %s at offset 0 of" % path) != 2:
            raise TestFailure("the log does not name both files opened at 0:\n%s" % text)
        if text.count("path %s matches no file" % nothing) != 1:
            raise TestFailure("the empty pattern is not named exactly once:\n%s" % text)
        # an outage: /health degraded, then the brokers back
        c.stop("TERM")
        with open(path, "a") as f:
            f.write("GET /e 202\n")
        agentlib.wait_for(lambda: health(mport)[0] == 503, 60, "/health to report degraded")
        code, body = health(mport)
        if "degraded" not in body or "brokers down" not in body:
            raise TestFailure("/health while the collector is down: %d %r" % (code, body))
        log("/health during the outage: %d %s" % (code, body.strip()))
        c.start()
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_events_acked_total", 0) >= 6,
                          120, "the event written during the outage")
        agentlib.wait_for(lambda: health(mport)[0] == 200, 60, "/health to be ok again")
        text = log_text(a)
        if "brokers reachable again" not in text:
            raise TestFailure("the log does not say the brokers are back")
        # each refused connection once (librdkafka's own line), not again
        # through the error callback
        refused = [ln for ln in text.splitlines() if "Connection refused" in ln]
        if not refused or any("librdkafka:" not in ln for ln in refused):
            raise TestFailure("refused connections logged other than once each:\n%s"
                              % "\n".join(refused))
        # a reload that changes the input's paths
        a.pipelines = a.pipelines.replace('"%s"]' % nothing, '"%s.2"]' % path)
        a.write_config()
        a.proc.send_signal(signal.SIGHUP)
        agentlib.wait_for(lambda: "reload: 0 inputs unchanged" in log_text(a), 30, "the reload")
        if "reload: input web-in changed (pipeline web)" not in log_text(a):
            raise TestFailure("the reload does not name the changed input")
        a.stop("TERM")
        # the restart opens the file, grown meanwhile, at its checkpoint
        size = os.path.getsize(path)
        with open(path, "a") as f:
            f.write("GET /f 203\n")
        a.start()
        want = "input web-in: opened %s at offset %d of %d (its checkpoint)" % (
            path, size, os.path.getsize(path))
        agentlib.wait_for(lambda: want in log_text(a), 30, "the file opened at its checkpoint")
        # a dry run beside it feeds a test file through the tail input's
        # pipeline: parsed, typed and routed as the agent would
        test_in = os.path.join(c.tmp, "test-input.txt")
        with open(test_in, "w") as f:
            f.write("GET /z 299\nnot parsed\n")
        r = subprocess.run([agentlib.AGENT, "--config", a.conf, "--dry-run", "--input", test_in],
                           capture_output=True, timeout=60)
        evs = [json.loads(ln) for ln in r.stdout.decode().splitlines() if ln]
        got = [(e["topic"], e["value"].get("status"), e["value"].get("parse_error")) for e in evs]
        if r.returncode != 0 or got != [(TOPIC, 299, None), (BAD, None, True)]:
            raise TestFailure("--dry-run --input %s: status %d, %r\n%s"
                              % (test_in, r.returncode, got, r.stderr.decode(errors="replace")))
        a.stop("TERM")
        # a state_dir whose parents do not exist is made (as a package would)
        nested = os.path.join(c.tmp, "var", "lib", "tributary", "agent")
        with open(a.conf) as f:
            conf = f.read().replace("state_dir: %s" % a.state, "state_dir: %s" % nested)
        other = os.path.join(c.tmp, "nested.yaml")
        with open(other, "w") as f:
            f.write(conf)
        r = subprocess.run([agentlib.AGENT, "--config", other, "--once"], capture_output=True,
                           timeout=120)
        if r.returncode != 0 or not os.path.isfile(os.path.join(nested, "checkpoints")):
            raise TestFailure("--once with a new nested state_dir: status %d\n%s"
                              % (r.returncode, r.stderr.decode(errors="replace")))


run_test(main, extra_args=["--listen", "127.0.0.1:%d" % PORT])
