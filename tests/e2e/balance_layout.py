"""The layout of tests/e2e/balance.py (issue 17): its addresses, ports, timings and scenarios, and
the names of its runs; shared by the driver (balance.py) and the judge (balance_judge.py)."""

import collections
import os

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROGRAM_DNS = "127.0.0.1"        # /etc/resolv.conf inside the namespace
SHIM_DNS = "127.0.0.3"           # DNSAWARE_NAMESERVERS of every run
TTL = 1
PORT = 8080
COOLDOWN_PORT = {True: 8081, False: 8082}   # a port per run: the wire watch tells them apart
ADDRS = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"]
REFUSING = "127.0.0.13"          # nothing listens there on the cooldown ports
PROBE_PORT = 8089                # the wire watch's self-check: a refused connect of the driver's
ADDRS6 = ["fd00::10", "fd00::11"]
MIXED = ADDRS[:2] + ADDRS6
GROW_AT = 3.0                    # s after every pool is up: the grow names go to 4 addresses
SETTLE = 2 * TTL + 2.0           # s after the change by which a grown pool must be balanced
HOLD = 4.0                       # s the balance must then hold, to the end of the run
QUIET = 5.0                      # the rotating pool's last seconds, in which nothing may recycle
SAMPLE = 0.1                     # s between the grow judge's looks at the pools
RUN_TIMEOUT = 60

# scenario -> what its client is and what its name answers.
SCENARIOS = collections.OrderedDict([
    ("grow-8", dict(client="pool", conns=8, period=0.1, addrs=ADDRS[:1], grown=ADDRS, tol=1)),
    ("grow-64", dict(client="pool", conns=64, period=0.5, addrs=ADDRS[:1], grown=ADDRS, tol=2)),
    ("fresh", dict(client="fresh", count=100, rate=20.0, addrs=ADDRS)),
    ("rotating", dict(client="pool", conns=8, period=0.1, addrs=ADDRS, rotate=2)),
    ("mixed", dict(client="mixed", workers=8, per_worker=5, interval=0.2, addrs=MIXED)),
    ("cooldown", dict(client="fresh", count=60, rate=20.0, addrs=ADDRS)),
])
RUNS = [(sc, bal) for sc in SCENARIOS for bal in (True, False)]


def tag(sc, bal):
    return "%s.%s" % (sc, "balance" if bal else "control")


def name_of(sc, bal):
    return "%s-%s.test" % (sc, "balance" if bal else "control")


def port_of(sc, bal):
    return COOLDOWN_PORT[bal] if sc == "cooldown" else PORT
