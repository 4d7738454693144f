#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""SCRAM users: the offline command, `tributary users`, and what logins see.

  - `tributary-collector --add-user` wrote dave before the start; while the
    collector runs it refuses (the data directory is locked);
  - `tributary users list` shows dave's mechanism and iteration count
    (DescribeUserScramCredentials), never a key;
  - `tributary users set erin` (AlterUserScramCredentials, password on
    stdin) lets erin log in at once; a new password for dave takes effect
    for the next login (the old one is refused);
  - `tributary users delete erin` refuses erin's next login; deleting an
    unknown user exits 1 with RESOURCE_NOT_FOUND;
  - AlterUserScramCredentials in raw frames answers Kafka's errors per
    user: a user named twice (DUPLICATE_RESOURCE), iterations below 4096 and
    a SaltedPassword of the wrong length (UNACCEPTABLE_CREDENTIAL), mechanism
    3 (UNSUPPORTED_SASL_MECHANISM), deleting a missing credential
    (RESOURCE_NOT_FOUND), while a good upsertion in the same request applies;
  - data/scram-credentials has mode 0600, holds no password, and the users
    survive a restart.
"""
import hashlib
import importlib
import os
import stat
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from tributary_harness import COLLECTOR, TestFailure, log  # noqa: E402

LISTENERS = """
  - name: sasl
    address: 127.0.0.1:0
    security: sasl_plaintext
"""


def login(c, mech, user, pw):
    p = seclib.kcat(["-L", "-b", c.listeners["sasl"], "-m", "5"],
                    {"security.protocol": "sasl_plaintext", "sasl.mechanisms": mech,
                     "sasl.username": user, "sasl.password": pw})
    return p.returncode == 0


def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def cstr(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def cbytes(b):
    return uvarint(len(b) + 1) + b


def alter_raw(c, deletions, upsertions):
    """AlterUserScramCredentials v0 (flexible) in raw bytes: {user: error code}."""
    body = uvarint(len(deletions) + 1)
    for name, mech in deletions:
        body += cstr(name) + struct.pack(">b", mech) + b"\x00"
    body += uvarint(len(upsertions) + 1)
    for name, mech, iters, salt, salted in upsertions:
        body += cstr(name) + struct.pack(">bi", mech, iters) + cbytes(salt) + cbytes(salted)
        body += b"\x00"
    body += b"\x00"
    conn = seclib.Conn(c.bootstrap)
    hdr = struct.pack(">hhi", 51, 0, 7) + seclib.string("it") + b"\x00"
    conn.send_raw(seclib.s32(len(hdr) + len(body)) + hdr + body)
    data = conn.recv_exact(struct.unpack(">i", conn.recv_exact(4))[0])
    conn.close()
    p = 0

    def take(n):
        nonlocal p
        p += n
        return data[p - n:p]

    def varint():
        v = shift = 0
        while True:
            b = take(1)[0]
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    if struct.unpack(">i", take(4))[0] != 7:
        raise TestFailure("AlterUserScramCredentials: wrong correlation id")
    take(1)  # header tags
    take(4)  # throttle
    out = {}
    for _ in range(varint() - 1):
        user = take(varint() - 1).decode()
        code = struct.unpack(">h", take(2))[0]
        n = varint()
        if n:
            take(n - 1)
        take(1)
        out[user] = code
    return out


def salted(pw, salt, iters, mech=hashlib.sha512):
    return hashlib.pbkdf2_hmac(mech().name, pw.encode(), salt, iters)


def main(c):
    p = subprocess.run([COLLECTOR, "--add-user", "x", "--data-dir", c.data], input="pw\n",
                       capture_output=True, text=True, timeout=30)
    if p.returncode == 0 or "in use" not in p.stderr:
        raise TestFailure("--add-user on a running collector's directory: exit %d, %s"
                          % (p.returncode, p.stderr))
    out = c.cli("users", "list").stdout
    if out.strip() != "dave\tSCRAM-SHA-512\titerations=4096":
        raise TestFailure("users list: %r" % out)
    if not login(c, "SCRAM-SHA-512", "dave", "dave-1"):
        raise TestFailure("dave cannot log in")

    c.cli("users", "set", "erin", "--mechanism", "SCRAM-SHA-256", input="erin pw\n")
    c.cli("users", "set", "dave", "--iterations", "5000", input="dave-2\n")
    out = c.cli("users", "list").stdout.splitlines()
    if sorted(out) != ["dave\tSCRAM-SHA-512\titerations=5000",
                       "erin\tSCRAM-SHA-256\titerations=8192"]:
        raise TestFailure("users list after set: %r" % out)
    if not login(c, "SCRAM-SHA-256", "erin", "erin pw"):
        raise TestFailure("erin cannot log in after users set")
    if login(c, "SCRAM-SHA-512", "dave", "dave-1"):
        raise TestFailure("dave's old password still works")
    if not login(c, "SCRAM-SHA-512", "dave", "dave-2"):
        raise TestFailure("dave's new password does not work")
    log("users set: erin logs in; dave's new password replaced the old")

    c.cli("users", "delete", "erin")
    if login(c, "SCRAM-SHA-256", "erin", "erin pw"):
        raise TestFailure("erin still logs in after users delete")
    p = c.cli("users", "delete", "nobody", check=False)
    if p.returncode != 1 or "RESOURCE_NOT_FOUND" not in p.stderr:
        raise TestFailure("users delete nobody: exit %d, %s" % (p.returncode, p.stderr))
    log("users delete: erin refused; an unknown user is RESOURCE_NOT_FOUND")

    salt = os.urandom(16)
    got = alter_raw(c, [("ghost", 1), ("frank", 2)],
                    [("frank", 2, 4096, salt, salted("f", salt, 4096)),
                     ("gina", 2, 1000, salt, salted("g", salt, 1000)),
                     ("hank", 2, 4096, salt, b"short"),
                     ("ivan", 3, 4096, salt, salted("i", salt, 4096)),
                     ("judy", 1, 4096, salt, salted("judy pw", salt, 4096, hashlib.sha256))])
    want = {"ghost": 91, "frank": 92, "gina": 93, "hank": 93, "ivan": 33, "judy": 0}
    if got != want:
        raise TestFailure("AlterUserScramCredentials answered %r, expected %r" % (got, want))
    if not login(c, "SCRAM-SHA-256", "judy", "judy pw"):
        raise TestFailure("judy, upserted beside refused changes, cannot log in")
    out = sorted(c.cli("users", "list").stdout.splitlines())
    if out != ["dave\tSCRAM-SHA-512\titerations=5000", "judy\tSCRAM-SHA-256\titerations=4096"]:
        raise TestFailure("users after the raw request: %r" % out)
    log("AlterUserScramCredentials: Kafka's error per user; the good upsertion applied")
    c.cli("users", "delete", "judy")

    path = os.path.join(c.data, "scram-credentials")
    if stat.S_IMODE(os.stat(path).st_mode) != 0o600:
        raise TestFailure("%s has mode %o" % (path, stat.S_IMODE(os.stat(path).st_mode)))
    text = open(path).read()
    if "dave-2" in text or "dave-1" in text or "erin" in text:
        raise TestFailure("the credential file holds a password or a deleted user:\n" + text)
    c.restart()
    if not login(c, "SCRAM-SHA-512", "dave", "dave-2"):
        raise TestFailure("dave's password did not survive a restart")
    log("the store survives a restart (mode 0600, no passwords in it)")


if __name__ == "__main__":
    seclib.require("kcat")
    seclib.run(main, LISTENERS, users=[("dave", "dave-1", "SCRAM-SHA-512")])
