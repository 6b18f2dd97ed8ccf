#!/usr/bin/python3
"""Self-test of dnsresponder.py (the programmable DNS server of the end-to-end tests): how it
serves, as a process on its sockets.

    /usr/bin/python3 tests/e2e/test_dnsresponder_serving.py [--keep]

Needs root: the script re-executes itself under `unshare --net --mount` (dnsresponder_selftest.py),
brings `lo` up and makes every mount private, so the server can bind port 53 on 127.0.0.1 and
127.0.0.3 and a generated resolv.conf / nsswitch.conf / hosts can be bind-mounted over /etc
without touching the host. No network beyond that private loopback is used.

It starts dnsresponder.py and checks: delay (0.8 s and 2 s, a slow name holding up no other, also
on one TCP connection), malformed queries, that glibc's resolver accepts the answers
(getaddrinfo in a subprocess, including a TC -> TCP retry), a clean exit on SIGTERM and a bad
zone at startup. test_dnsresponder.py checks the answers and the wire format;
dnsresponder_selftest.py has what both share (the zone, the helpers, the run).

Exit status: 0 pass, 1 fail (a check failed, or the harness could not run: the message says).
"""

import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import dnsresponder as dr
from dnsresponder_selftest import (BIG, DELAY, DELAY2, DNS1, PYTHON, SERVER, Failure, check, main,
                                   q, section, sh)


def check_delay():
    section("delay")
    results = {}

    def slow(proto):
        t0 = time.monotonic()
        try:
            results[proto] = (q(DNS1, "slow.test", "A", proto, timeout=3.0),
                              time.monotonic() - t0)
        except Exception as e:
            results[proto] = (e, time.monotonic() - t0)

    def slow2():
        t0 = time.monotonic()
        try:
            results["slow2"] = (q(DNS1, "slow2.test", "A", "udp", timeout=4.0),
                                time.monotonic() - t0)
        except Exception as e:
            results["slow2"] = (e, time.monotonic() - t0)

    threads = [threading.Thread(target=slow, args=(p,)) for p in ("udp", "tcp")]
    threads.append(threading.Thread(target=slow2))
    for t in threads:
        t.start()
    time.sleep(0.1)
    for proto in ("udp", "tcp"):
        t0 = time.monotonic()
        rc, addrs, _ = q(DNS1, "svc.test", "A", proto)
        took = time.monotonic() - t0
        check(rc == 0 and took < 0.3, "%s: svc.test answers at once (%.3fs) while slow.test "
              "waits" % (proto, took), (rc, addrs))
    # Pipelined on one TCP connection: the slow query must not hold up the one behind it.
    with socket.create_connection((DNS1, 53), timeout=3.0) as s:
        qs = dr.build_query("slow.test", qid=1)
        qf = dr.build_query("svc.test", qid=2)
        t0 = time.monotonic()
        s.sendall(struct.pack("!H", len(qs)) + qs + struct.pack("!H", len(qf)) + qf)
        order = []
        for _ in range(2):
            n = struct.unpack("!H", dr._recv_exact(s, 2))[0]
            r = dr.parse_message(dr._recv_exact(s, n))
            order.append((r["id"], round(time.monotonic() - t0, 3)))
    check([i for i, _ in order] == [2, 1] and order[0][1] < 0.3 and order[1][1] >= DELAY - 0.05,
          "one TCP connection, slow then fast query: fast reply first, slow after the delay",
          order)
    for t in threads:
        t.join()
    for proto in ("udp", "tcp"):
        res, took = results[proto]
        check(isinstance(res, tuple) and res[0] == 0 and res[1] == [("127.0.0.50", 1)]
              and took >= DELAY - 0.05,
              "%s: slow.test answered after %.3fs (delay %.1fs)" % (proto, took, DELAY), res)
    res, took = results["slow2"]
    check(isinstance(res, tuple) and res[1] == [("127.0.0.51", 1)] and took >= DELAY2 - 0.05,
          "slow2.test answered after %.3fs (delay %.1fs)" % (took, DELAY2), res)



def check_malformed(srv):
    section("malformed queries")
    n0 = len(dr.read_log(srv.log))
    bad = [
        b"\x00",                                              # shorter than a header
        b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # no question
        b"\x12\x34\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00" + dr.encode_name("svc.test")
        + b"\x00\x01\x00\x01",                                # QR set: a response
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03svc\x04te",   # cut in the name
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # pointer
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00",        # no type/class
        os.urandom(300),
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for b in bad:
            s.sendto(b, (DNS1, 53))
    with socket.create_connection((DNS1, 53), timeout=2.0) as s:
        s.sendall(struct.pack("!H", 5) + b"\x01\x02\x03\x04\x05")   # garbage, framed
        m = dr.build_query("svc.test", qid=7)
        s.sendall(struct.pack("!H", len(m)) + m)                    # then a good query
        n = struct.unpack("!H", dr._recv_exact(s, 2))[0]
        r = dr.parse_message(dr._recv_exact(s, n))
    check(r["id"] == 7 and r["rcode"] == 0, "TCP connection survives a garbage message")
    with socket.create_connection((DNS1, 53), timeout=2.0) as s:
        s.sendall(struct.pack("!H", 100) + b"abc")                  # closes mid-message
    # Trailing junk after the question is tolerated: the question is enough to answer.
    m = dr.build_query("svc.test", qid=9)
    m = m[:10] + b"\x00\x01" + m[12:] + b"\xff\xff\xff"
    r = dr.parse_message(dr.exchange(DNS1, m))
    check(r["rcode"] == 0 and len(r["answers"]) == 2, "junk additional section tolerated")
    rc, addrs, _ = q(DNS1, "svc.test")
    check(rc == 0 and len(addrs) == 2 and srv.proc.poll() is None,
          "server still up and answering after %d malformed messages" % (len(bad) + 2))
    time.sleep(0.1)
    errs = [e for e in dr.read_log(srv.log)[n0:] if "error" in e]
    check(len(errs) == len(bad) + 2 and all({"t", "listen", "src", "sport", "proto"} <= set(e)
                                            for e in errs),
          "each malformed message logged as an error line (%d)" % len(errs),
          [e.get("error") for e in errs])



GLIBC_PROBE = r"""
import json, socket, sys
out = {}
for name in sys.argv[1:]:
    try:
        res = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME)
        out[name] = {"addrs": sorted({r[4][0] for r in res}), "canon": res[0][3]}
    except socket.gaierror as e:
        out[name] = {"error": e.errno}
print(json.dumps(out))
"""


def check_glibc(srv):
    section("glibc resolver (getaddrinfo in a subprocess)")
    etc = os.path.join(srv.wd, "etc")
    os.makedirs(etc, exist_ok=True)
    files = {
        "resolv.conf": "nameserver %s\noptions timeout:1 attempts:2\n" % DNS1,
        "nsswitch.conf": "hosts: files dns\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
    }
    for name, text in files.items():
        p = os.path.join(etc, name)
        with open(p, "w") as f:
            f.write(text)
        sh("mount", "--bind", p, "/etc/" + name)   # private mount namespace: host untouched
    n0 = len(dr.read_log(srv.log))
    names = ["svc.test", "alias.test", "big.test", "nxdomain.test", "unknown.test"]
    r = subprocess.run([PYTHON, "-c", GLIBC_PROBE] + names, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    if r.returncode != 0:
        raise Failure("getaddrinfo probe failed: %s" % r.stderr)
    res = json.loads(r.stdout)
    check(res["svc.test"].get("addrs") == sorted(["127.0.0.10", "127.0.0.11", "::1"]),
          "svc.test: glibc returns the zone's A and AAAA addresses", res["svc.test"])
    check(res["alias.test"] == {"addrs": ["127.0.0.40", "127.0.0.41"], "canon": "target.test"},
          "alias.test: glibc follows the CNAME chain (canonical name target.test)",
          res["alias.test"])
    got = res["big.test"].get("addrs", [])
    check(sorted(got, key=ipaddress.ip_address) == sorted(BIG, key=ipaddress.ip_address),
          "big.test: glibc gets all 1000 addresses (TC over UDP, retried over TCP)",
          res["big.test"].get("error", len(got)))
    check(res["nxdomain.test"].get("error") == socket.EAI_NONAME
          and res["unknown.test"].get("error") == socket.EAI_NONAME,
          "nxdomain.test and an unknown name: EAI_NONAME",
          (res["nxdomain.test"], res["unknown.test"]))
    time.sleep(0.1)
    glibc = [e for e in dr.read_log(srv.log)[n0:] if e.get("src") == DNS1]
    seen = {(e["qname"], e["proto"], e["tc"]) for e in glibc if e.get("qtype") == "A"}
    check(("big.test", "udp", True) in seen and ("big.test", "tcp", False) in seen,
          "the log shows glibc's UDP query truncated and its TCP retry", sorted(seen))


def check_sigterm(srv):
    section("exit")
    with open(srv.pidfile) as f:
        pid = int(f.read())
    check(pid == srv.proc.pid, "pid file holds the server's pid")
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(3)
    except subprocess.TimeoutExpired:
        raise Failure("dnsresponder did not exit within 3s of SIGTERM")
    check(rc == 0, "SIGTERM: exit status 0", rc)
    check(not os.path.exists(srv.pidfile), "pid file removed on exit")
    err = srv.stderr()
    check("Traceback" not in err, "no traceback on stderr", err)
    # The helper's failure mode when nobody listens: an error, never a hang.
    try:
        q(DNS1, "svc.test", timeout=0.5)
        refused = False
    except (ConnectionRefusedError, TimeoutError):
        refused = True
    check(refused, "query() raises when the server is gone")


def check_startup_errors(wd):
    section("startup errors")
    bad = os.path.join(wd, "bad-zone.json")
    with open(bad, "w") as f:
        f.write('{"names": {"x.test": {"mode": "sometimes"}}}')
    r = subprocess.run([PYTHON, SERVER, "--listen", DNS1, "--port", "5353", "--zone", bad,
                        "--log", os.path.join(wd, "x.jsonl")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
    check(r.returncode == 2 and "ready" not in r.stdout and "sometimes" in r.stderr,
          "a bad zone at startup: exit 2 with a message, no ready", (r.returncode, r.stderr))


def checks(srv, wd):
    # check_sigterm stops the server: the checks that need it come before.
    check_delay()
    check_malformed(srv)
    check_glibc(srv)
    check_sigterm(srv)
    check_startup_errors(wd)


if __name__ == "__main__":
    sys.exit(main(os.path.abspath(__file__), checks))
