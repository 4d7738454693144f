# SPDX-License-Identifier: Apache-2.0
"""A second agent, or a dry run, beside a running agent takes none of its
syslog datagrams.

The running agent listens for syslog over UDP and serves its metrics
endpoint. Beside it:
  - the same command again (same configuration) fails at once: state_dir
    is locked;
  - an agent with the same inputs and another state_dir fails to bind,
    naming the address (a UDP socket has no SO_REUSEADDR, which on Linux
    would let it share the port and take the datagrams);
  - `--dry-run` of the live configuration runs: it neither locks state_dir
    nor listens on the syslog address nor on the metrics port.
util-linux `logger` then sends N messages over UDP: the running agent must
deliver all N to the topic, and the dry run must have printed none.
Then `--dry-run --input -` feeds lines from stdin through the syslog
input's pipeline and prints them parsed, without any socket, and `--once`
with a syslog input exits (the listener, which has no end, is not started).
"""
import importlib
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SANITIZER, Skip, TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
TOPIC = "agent.second"
N = 20


def logger(*args):
    r = subprocess.run(["logger"] + list(args), capture_output=True, timeout=30)
    if r.returncode != 0:
        raise TestFailure("logger %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))


def main(c):
    agentlib.require_kcat()
    if subprocess.run(["sh", "-c", "command -v logger"], capture_output=True).returncode:
        raise Skip("logger is not installed (scripts/test installs it)")
    udp = agentlib.free_port(socket.SOCK_DGRAM)
    mport = agentlib.free_port()
    pipelines = """
  - name: syslog
    inputs:
      - {type: syslog, id: udp-in, mode: udp, address: "127.0.0.1:%d", timezone: UTC}
    topic: %s
""" % (udp, TOPIC)
    a = agentlib.Agent(c.tmp, c.bootstrap, pipelines,
                       agent_extra="  metrics: 127.0.0.1:%d\n" % mport)
    # its own topic: what it would take shows as missing from the first's
    b = agentlib.Agent(c.tmp, c.bootstrap, pipelines.replace(TOPIC, TOPIC + ".b"),
                       name="second")
    dry_log = open(os.path.join(c.tmp, "dry.log"), "wb")
    dry_out = open(os.path.join(c.tmp, "dry.out"), "wb")
    dry = None
    with agentlib.guard(a, b):
        try:
            a.start()
            agentlib.wait_listening(a, b"listening on 127.0.0.1:%d" % udp)
            # the same command again: state_dir is locked
            r = subprocess.run([agentlib.AGENT, "--config", a.conf], capture_output=True,
                               timeout=60)
            out = (r.stdout + r.stderr).decode(errors="replace")
            if r.returncode == 0 or "cannot lock" not in out:
                raise TestFailure("a second agent with the same configuration: status %d, "
                                  "output:\n%s" % (r.returncode, out))
            # the same inputs, another state_dir: the bind fails, naming the address
            # (checked after the datagrams: one that did bind would take them)
            b.start()

            def b_settled():
                with open(b.log_path(), "rb") as f:
                    return not b.alive() or b"running:" in f.read()
            agentlib.wait_for(b_settled, 60, "the second agent to exit or run")
            # a dry run of the live configuration stays up beside it
            dry = subprocess.Popen([agentlib.AGENT, "--config", a.conf, "--dry-run"],
                                   stdout=dry_out, stderr=dry_log)

            def dry_running():
                if dry.poll() is not None:
                    raise TestFailure("the dry run exited with status %d" % dry.returncode)
                with open(os.path.join(c.tmp, "dry.log"), "rb") as f:
                    return b"running:" in f.read()
            agentlib.wait_for(dry_running, 30, "the dry run")
            for i in range(N):
                logger("-d", "-n", "127.0.0.1", "-P", str(udp), "-t", "second",
                       "--rfc5424", "datagram seq=%d" % i)
            # every datagram must reach the running agent; a thief leaves it short
            try:
                agentlib.wait_for(lambda: a.metrics().get(
                    "tributary_agent_events_acked_total", 0) >= N, 30,
                    "%d events acknowledged by the running agent" % N)
            except TestFailure:
                pass
            got = agentlib.consume(c.bootstrap, TOPIC)
            seqs = sorted(agentlib.seqs(got))
            received = a.metrics().get("tributary_agent_syslog_received_total", 0)
            if received != N:
                raise TestFailure("the running agent received %d of %d datagrams" % (received, N))
            log("the running agent delivered %d of %d datagrams" % (len(seqs), N))
            if seqs != list(range(N)):
                raise TestFailure("the running agent delivered %d of %d datagrams: %s"
                                  % (len(seqs), N, seqs))
            if b.alive():
                raise TestFailure("a second agent on the same address is running")
            rc = b.wait(60)
            with open(b.log_path()) as f:
                out = f.read()
            want = "127.0.0.1:%d" % udp
            if rc == 0 or want not in out or "Address already in use" not in out:
                raise TestFailure("a second agent on the same address: status %d, output:\n%s"
                                  % (rc, out))
            log("second agent refused: %s" % [ln for ln in out.splitlines() if want in ln][0])
            if dry.poll() is not None:
                raise TestFailure("the dry run exited with status %d" % dry.returncode)
            dry.terminate()
            if dry.wait(60) != 0:
                raise TestFailure("the dry run ended with status %d" % dry.returncode)
            with open(os.path.join(c.tmp, "dry.out"), "rb") as f:
                printed = f.read()
            with open(os.path.join(c.tmp, "dry.log"), "rb") as f:
                dlog = f.read().decode(errors="replace")
            if printed:
                raise TestFailure("the dry run printed events: %r" % printed[:500])
            if "not listening on 127.0.0.1:%d in a dry run" % udp not in dlog:
                raise TestFailure("the dry run does not say it left the listener:\n%s" % dlog)
            if "metrics on http" in dlog:
                raise TestFailure("the dry run started a metrics endpoint:\n%s" % dlog)
            if SANITIZER.search(dlog.encode()):
                raise TestFailure("sanitizer report in the dry run's log:\n%s" % dlog)
            # test input from stdin through the syslog input's pipeline
            lines = ("<13>Nov 26 10:00:01 web-9 app[7]: fed one\n"
                     "<165>1 2026-11-26T10:00:00.5Z web-9 app 8 ID1 - fed two\n")
            r = subprocess.run([agentlib.AGENT, "--config", a.conf, "--dry-run", "--input", "-"],
                               input=lines.encode(), capture_output=True, timeout=60)
            if r.returncode != 0:
                raise TestFailure("--dry-run --input -: status %d\n%s"
                                  % (r.returncode, r.stderr.decode(errors="replace")))
            evs = [json.loads(ln) for ln in r.stdout.decode().splitlines() if ln]
            msgs = [(e["topic"], e["value"]["message"], e["value"].get("app")) for e in evs]
            if msgs != [(TOPIC, "fed one", "app"), (TOPIC, "fed two", "app")]:
                raise TestFailure("--dry-run --input - printed %r" % msgs)
            # --once with a syslog input: the listener is not started, the
            # agent exits once its (no) files are read
            r = subprocess.run([agentlib.AGENT, "--config", b.conf, "--once"],
                               capture_output=True, timeout=60)
            out = (r.stdout + r.stderr).decode(errors="replace")
            if r.returncode != 0 or "input udp-in (syslog): not started under --once" not in out:
                raise TestFailure("--once with a syslog input: status %d\n%s"
                                  % (r.returncode, out))
            a.stop("TERM")
        finally:
            if dry is not None and dry.poll() is None:
                dry.kill()
                dry.wait()
            dry_log.close()
            dry_out.close()


run_test(main)
