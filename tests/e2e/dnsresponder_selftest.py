"""What the two self-tests of dnsresponder.py (test_dnsresponder.py, test_dnsresponder_serving.py)
share: the zone they serve, the check helpers, the server under test and the run in a private
network and mount namespace (root).

A self-test script calls main(its own path, its checks): main re-executes the script under
`unshare --net --mount` with --inside WORKDIR, where inside() brings `lo` up, makes every mount
private, starts dnsresponder.py on 127.0.0.1 and 127.0.0.3 port 53 and calls checks(srv, wd).
"""

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "dnsresponder.py")
sys.path.insert(0, HERE)
import dnsresponder as dr  # noqa: E402

DNS1, DNS3 = "127.0.0.1", "127.0.0.3"
SRC = "127.0.0.2"            # the test's own queries come from here (told apart in the log)
SILENT_TIMEOUT = 0.3
DELAY = 0.8
DELAY2 = 2.0                 # the hostile server of tests/badinput/hostile_dns.py

BIG = ["127.2.%d.%d" % (i // 250, i % 250 + 1) for i in range(1000)]
MID40 = ["127.3.0.%d" % (i + 1) for i in range(40)]
ROT4 = ["127.0.1.%d" % i for i in range(1, 7)]
ROT6 = ["fd00::a", "fd00::b", "fd00::c"]

ZONE = {
    "svc.test": {"addrs": ["127.0.0.10", "::1", {"addr": "127.0.0.11", "ttl": 5}], "ttl": 1},
    "v4only.test": {"addrs": ["127.0.0.20"], "ttl": 7},
    "servfail.test": {"mode": "servfail", "addrs": ["127.0.0.30"]},
    "nxdomain.test": {"mode": "nxdomain"},
    "empty.test": {"mode": "empty", "addrs": ["127.0.0.30"]},
    "refused.test": {"mode": "refused"},
    "silent.test": {"mode": "silent", "addrs": ["127.0.0.30"]},
    "rot.test": {"addrs": ROT4 + ROT6, "rotate": 2, "ttl": 3},
    "alias.test": {"cname": "mid.test", "ttl": 2},
    "mid.test": {"cname": "target.test", "ttl": 20},
    "target.test": {"addrs": ["127.0.0.40", "127.0.0.41"], "ttl": 30},
    "dangling.test": {"cname": "nowhere.test", "ttl": 4},
    "big.test": {"addrs": BIG, "ttl": 10},
    "mid40.test": {"addrs": MID40, "ttl": 10},
    "slow.test": {"addrs": ["127.0.0.50"], "ttl": 1, "delay": DELAY},
    "slow2.test": {"addrs": ["127.0.0.51"], "ttl": 1, "delay": DELAY2},
}
HOSTILE = ["127.0.0.98", "127.0.0.99"]
for _mode in dr.GARBAGE_MODES:
    ZONE[_mode + ".test"] = {"mode": _mode, "addrs": HOSTILE, "ttl": 1}


class Failure(Exception):
    pass


class HarnessError(Exception):
    pass


CHECKS = [0]


def ok(msg):
    CHECKS[0] += 1
    print("  ok  %s" % msg, flush=True)


def check(cond, msg, detail=None):
    if not cond:
        raise Failure(msg + ("" if detail is None else ": %s" % (detail,)))
    ok(msg)


def section(title):
    print("-- %s" % title, flush=True)


def q(server, name, qtype="A", proto="udp", **kw):
    kw.setdefault("src", SRC)
    return dr.query(server, name, qtype, proto=proto, **kw)


def sh(*argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise HarnessError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stdout.strip()))


# --------------------------------------------------------------------------------------------
# the server under test
# --------------------------------------------------------------------------------------------

class ServerProc:
    def __init__(self, wd):
        self.wd = wd
        self.zone = os.path.join(wd, "zone.json")
        self.log = os.path.join(wd, "queries.jsonl")
        self.pidfile = os.path.join(wd, "dnsresponder.pid")
        self.stderr_path = os.path.join(wd, "dnsresponder.stderr")
        self.proc = None

    def start(self):
        dr.write_zone(self.zone, ZONE)
        self.stderr_f = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [PYTHON, SERVER, "--listen", DNS1, "--listen", DNS3, "--port", "53",
             "--zone", self.zone, "--log", self.log, "--pid-file", self.pidfile],
            stdout=subprocess.PIPE, stderr=self.stderr_f, text=True)
        r, _, _ = select.select([self.proc.stdout], [], [], 5.0)
        line = self.proc.stdout.readline() if r else ""
        if line.strip() != "ready":
            raise HarnessError("dnsresponder did not print ready (got %r); stderr: %s"
                               % (line, self.stderr()))

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------

def inside(wd, keep, checks):
    sh("mount", "--make-rprivate", "/")
    sh("ip", "link", "set", "lo", "up")
    srv = ServerProc(wd)
    t0 = time.monotonic()
    try:
        srv.start()
        checks(srv, wd)
    except Failure as e:
        print("FAIL: %s" % e, flush=True)
        print("server stderr:\n%s" % srv.stderr(), flush=True)
        return 1
    except HarnessError as e:
        print("FAIL: harness: %s" % e, flush=True)
        return 1
    finally:
        srv.stop()
    print("PASS: %d checks in %.1fs" % (CHECKS[0], time.monotonic() - t0), flush=True)
    return 0


def main(script, checks):
    """script: the self-test's own path (re-executed under unshare); checks(srv, wd): its checks."""
    keep = "--keep" in sys.argv
    if "--inside" in sys.argv:
        return inside(sys.argv[sys.argv.index("--inside") + 1], keep, checks)
    missing = [p for p in ("unshare", "ip", "mount") if not shutil.which(p)]
    if os.geteuid() != 0:
        missing.append("root (namespaces, port 53, bind mounts)")
    if missing:
        print("FAIL: prerequisite missing: %s" % ", ".join(missing), flush=True)
        return 1
    wd = tempfile.mkdtemp(prefix="dnsresponder-test-")
    os.chmod(wd, 0o755)
    r = subprocess.run(["unshare", "--net", "--mount", "--", PYTHON, script,
                        "--inside", wd] + (["--keep"] if keep else []))
    rc = r.returncode
    if rc not in (0, 1):
        print("FAIL: unshare/test exited with status %d" % rc, flush=True)
        rc = 1
    if rc == 0 and not keep:
        shutil.rmtree(wd, ignore_errors=True)
    else:
        print("files kept in %s" % wd, flush=True)
    return rc
