"""The matrix's scenarios (tests/e2e/matrix.py): one DNS behaviour each, and what the clients
are expected to do under it."""

from matrix_clients import CLIENTS, OWN_DNS, PER_REQUEST, PER_REQUEST_NOCACHE
from matrix_layout import ADDRS, NET4, NET6, SLOW_SECONDS, TTL


class Scenario:
    def __init__(self, name, title, initial, final=None, ttl_after=None, fault=None,
                 rotate=None, controls=False, rate=5.0, env=None, clients=None, slow=False,
                 expect="follow", run_after=6.0, failures_reported=False, settle=0.0,
                 refusing=(), connection="keep-alive", tls=False, net=NET4, via=None,
                 move_every=None, back_to_back=False, answer_delay=None, lose_none=()):
        self.name = name
        self.title = title
        self.initial = initial      # addresses at start
        self.final = final          # addresses after the change (None: no change of set)
        self.ttl_after = ttl_after  # TTL after the change (None: unchanged)
        self.fault = fault          # (mode, seconds): DNS misbehaves, then answers again
        self.rotate = rotate        # answer this many random addresses of the set per query
        self.controls = controls    # run every client a second time without the shim
        self.rate = rate
        self.env = env or {}
        self.clients = clients or [c.cid for c in CLIENTS]
        self.slow = slow            # a slow request is in flight across the change
        # follow | stay | recycle | pinned | failover, or one of the resolver's bad days
        # (matrix_baddays.py): stale | negative | stale-max | cache
        self.expect = expect
        self.run_after = run_after  # seconds of traffic after the change / fault
        # Busy clients: a request the shim fails with EPIPE (the send path, when it finds no
        # idle gap) is reported by the clients that do not retry it. Counted and reported per
        # client and per move (docs/compatibility.md); asserted to be none for the clients in
        # lose_none (issue 16's goal).
        self.failures_reported = failures_reported
        self.lose_none = list(lose_none)
        self.settle = settle        # added to the deadline: the client's own reuse interval
        self.refusing = list(refusing)  # addresses of the name where nothing listens
        self.connection = connection    # close: a fresh connection per request
        self.tls = tls              # HTTPS to the backends (TLS_PORT), a test CA made at run time
        self.net = net              # NET4, or NET6: IPv6 addresses and AAAA-only names
        # Several moves in one run: the name goes from initial through each set of via, then
        # to final, one move every move_every seconds (each after the previous one's deadline).
        # No address comes back: the shim takes an address that returns within a few answers
        # of its removal for a rotating name, and then no absence drains anything.
        self.via = [list(v) for v in via or []]
        self.move_every = move_every
        assert not self.via or (final and move_every and not ttl_after and not rotate)
        # Clients send the next request the instant an answer ends (loop.py --back-to-back,
        # the python adapters): no pacing, the rate is ignored. answer_delay: every HTTP
        # answer is that many seconds late (the backend's --delay).
        self.back_to_back = back_to_back
        self.answer_delay = answer_delay

    def steps(self):
        """The name's address sets, from the start through every move."""
        return [list(self.initial)] + self.via + ([list(self.final)] if self.final else [])

    def addrs(self):
        """Every address the name ever has in the run."""
        return sorted({a for step in self.steps() for a in step})

    def removed(self):
        """The addresses the name no longer has at the end (every one it left)."""
        return set(self.addrs()) - set(self.final or self.initial)

    def deadline(self, t_change):
        """When every request must land on a current address (follow scenarios)."""
        extra = (self.ttl_after or TTL) * 1.1 if self.ttl_after else 0.0
        return (t_change + TTL + extra + 3.0 + (SLOW_SECONDS if self.slow else 0.0)
                + self.settle)


OLD, NEW = ADDRS[0], ADDRS[1]
# The resolver's bad days: every request resolves afresh, at a modest rate, beside a control.
_PER_REQUEST = dict(clients=[c.cid for c in PER_REQUEST], controls=True, rate=4.0,
                    connection="close", run_after=5.0)
# Busy connections: three moves per run, A->B->C->D, 4.5 s apart (each after the previous
# one's deadline, change + TTL + 3 s); the traffic ends 0.5 s after the last deadline, about
# 15.5 s after the clients' warm-up began. Each run must move at every move, within TTL + 2 s
# of it (the last request on the old address; matrix_judge.judge_reaction), and its control
# stay. Failed requests are counted per move and reported; at 20 and 50 requests/s (plain and
# TLS) the clients that check a pooled connection before reusing it must lose none (issue 16):
# BUSY_LOSE_NONE. libpq never checks (it loses the request the send path fails); at 100
# requests/s the gaps are 8 ms, near the watch's 6 ms quiet, and a loaded machine may miss one.
_BUSY = dict(via=[[ADDRS[1]], [ADDRS[2]]], move_every=4.5, run_after=3.5, controls=True,
             failures_reported=True)
BUSY_RATES = (20, 50, 100)
BUSY_LOSE_NONE = ["requests", "urllib3", "node", "redis", "curl", "java", "java-forever", "nginx"]
BUSY_REACTION_S = TTL + 2.0
TLS_CLIENTS = ["curl", "requests", "java", "node"]   # those whose adapter has --tls


def busy_name(rate, tls):
    """The busy cell's scenario: busy-20, busy (50, its name before issue 16), busy-100,
    busy-tls-20, busy-tls-50, busy-tls-100."""
    return "busy" if rate == 50 and not tls else "busy-%s%d" % ("tls-" if tls else "", rate)


BUSY = [Scenario(busy_name(rate, tls), "%d requests/s on one keep-alive connection%s, the name "
                 "moves three times (A to B to C to D)" % (rate, " over HTTPS" if tls else ""),
                 [ADDRS[0]], [ADDRS[3]], rate=float(rate), tls=tls,
                 clients=TLS_CLIENTS if tls else None,
                 lose_none=BUSY_LOSE_NONE if rate <= 50 else (), **_BUSY)
        for tls in (False, True) for rate in BUSY_RATES] + [
    # Clients with no idle boundary at all: the next request the instant an answer ends, each
    # answer 0.1 s late (so about 10 requests/s); requests does not retry, urllib3 does.
    Scenario("busy-back-to-back", "the next request the instant an answer ends (no pause), "
             "every answer 0.1 s late; the name moves three times", [ADDRS[0]], [ADDRS[3]],
             clients=["requests", "urllib3"], rate=10.0, back_to_back=True, answer_delay=0.1,
             **_BUSY),
]
# How the busy scenarios run in the test suite (tests/e2e/meson.build): each group is one meson
# test, its scenarios side by side. busy-100 runs alone: beside another cell the 2-core machine
# cannot keep 100 requests/s for 18 clients (measured: requests 49, Java 32 requests/s).
BUSY_GROUPS = {"matrix-busy": ["busy-20", "busy", "busy-back-to-back"],
               "matrix-busy-100": ["busy-100"],
               "matrix-busy-tls": ["busy-tls-20", "busy-tls-50", "busy-tls-100"]}
SCENARIOS = {s.name: s for s in [
    Scenario("move", "A moves to B", [OLD], [NEW], controls=True),
    # The control of steering itself: without it, the clients that keep the address stay.
    Scenario("move-no-redirect", "A moves to B, DNSAWARE_REDIRECT=0", [OLD], [NEW],
             env={"DNSAWARE_REDIRECT": "0"}, clients=["curl", "java", "java-forever", "nginx"],
             expect="pinned"),
    Scenario("move-ttl", "A moves to B and the TTL goes from 1 s to 3 s", [OLD], [NEW],
             ttl_after=3, controls=True, run_after=8.0),
    Scenario("add-remove", "one address added to and one removed from a set of three",
             ADDRS[0:3], ADDRS[1:4], controls=True),
    Scenario("outage", "DNS server stopped for 5 s", [OLD], fault=("stopped", 5.0),
             expect="stay"),
    Scenario("servfail", "SERVFAIL for 4 s", [OLD], fault=("servfail", 4.0), expect="stay"),
    Scenario("nxdomain", "NXDOMAIN for 4 s", [OLD], fault=("nxdomain", 4.0), expect="stay"),
    Scenario("empty", "empty NOERROR answer for 4 s", [OLD], fault=("empty", 4.0),
             expect="stay"),
    Scenario("silent", "no answer at all (timeouts) for 4 s", [OLD], fault=("silent", 4.0),
             expect="stay"),
    Scenario("rotating", "2 random addresses out of 4 on each query", ADDRS, rotate=2,
             expect="stay", run_after=10.0),
    Scenario("slow", "a 1.5 s request in flight across the move", [OLD], [NEW],
             controls=True, slow=True),
    Scenario("max-age", "DNSAWARE_MAX_AGE=2s, no DNS change", [OLD],
             env={"DNSAWARE_MAX_AGE": "2s"}, expect="recycle", run_after=8.0, controls=True),
    # Busy connections (issue 16; matrix_busy.py, docs/compatibility.md's section): 20, 50 and
    # 100 requests/s on one keep-alive connection, plain and over HTTPS, and back-to-back.
    *BUSY,
    Scenario("failover", "3 addresses, the first refuses connections; a fresh connection per "
             "request", ADDRS[0:3], refusing=[OLD], connection="close", rate=10.0, run_after=10.0,
             clients=["curl", "requests", "java", "node"], controls=True, expect="failover"),
    Scenario("many", "200 keep-alive connections in one process, A moves to B", [OLD], [NEW],
             rate=100.0, clients=["requests-200"], controls=True, run_after=6.0,
             settle=2.0),   # each connection is used every 2 s: it reconnects at its next use
    # The move over HTTPS: the shim sees only encrypted bytes, and the idle boundary must still
    # come after a complete TLS record exchange (each client trusts a test CA its own way).
    Scenario("move-tls", "A moves to B, HTTPS keep-alive (TLS 1.3, a test CA)", [OLD], [NEW],
             tls=True, clients=["curl", "requests", "java", "node"], controls=True),
    # The move in an IPv6-only world: AAAA-only names (NODATA for A), backends on fd00::10 and
    # fd00::11, the program's and the shim's DNS servers on fd00::1 and fd00::3.
    Scenario("move-ipv6", "A moves to B, IPv6 only (AAAA records, fd00::/8 on lo)",
             [NET6.addrs[0]], [NET6.addrs[1]], net=NET6, controls=True),
    # The move for programs the shim sees only through the DNS they exchange themselves
    # (gRPC's and node's c-ares, a program linking c-ares: DNSAWARE_LEARN_DNS), and for PHP,
    # whose curl extension is loaded with RTLD_DEEPBIND; gRPC native as the getaddrinfo
    # reference on the same backend.
    Scenario("move-own-dns", "A moves to B; clients that resolve with their own DNS client or "
             "load libcurl with RTLD_DEEPBIND", [OLD], [NEW], controls=True,
             clients=[c.cid for c in OWN_DNS]),
] + [
    # The resolver's bad days (design.md; judged by matrix_baddays.py): clients that resolve the
    # name for every request, while DNS fails. After the warm-up (a few seconds of good answers)
    # the fault lasts 20 s (issue 15), then DNS answers again for 5 s more.
    Scenario("dns-blackhole", "DNS drops every query for 20 s; a lookup per request", [OLD],
             fault=("silent", 20.0), expect="stale", **_PER_REQUEST),
    Scenario("dns-servfail", "SERVFAIL for 20 s; a lookup per request", [OLD],
             fault=("servfail", 20.0), expect="stale", **_PER_REQUEST),
    Scenario("dns-nxdomain", "NXDOMAIN for 8 s; a lookup per request", [OLD],
             fault=("nxdomain", 8.0), expect="negative", **_PER_REQUEST),
    # DNSAWARE_STALE_MAX=4s against a 20 s blackhole. The last good answer is stored by the
    # lookup just before the fault (a request every 0.25 s, each lookup a few ms), so during the
    # fault its age is under (time since the fault began) + 0.7 s. The first lookup of the
    # fault is decided after DNSAWARE_RESOLVE_TIMEOUT (1.8 s, default), at about 2 s, the next
    # ones at once: every lookup decided before 4 - 0.7 = 3.3 s is surely within STALE_MAX and
    # must be served stale (at least that first one); every lookup started after 4.3 s is
    # surely past it and must fail, as in the control (up to 2.5 s before the end, when glibc's
    # own retry may already meet the server again: 13 s of lookups that must fail). With 2 s,
    # the first lookup would be decided right at the limit, and only the failing half could
    # be judged.
    Scenario("dns-stale-max", "DNS drops every query for 20 s, DNSAWARE_STALE_MAX=4s; a lookup "
             "per request", [OLD], fault=("silent", 20.0), expect="stale-max",
             env={"DNSAWARE_STALE_MAX": "4s"}, **_PER_REQUEST),
    # No fault: the name's DNS queries with the cache on (the -nocache clients beside them have
    # it off under the shim; the controls have no shim), counted over 8 s after the warm-up.
    Scenario("dns-cache", "DNSAWARE_CACHE=1, DNS answering; a lookup per request", [OLD],
             expect="cache", env={"DNSAWARE_CACHE": "1"},
             **dict(_PER_REQUEST, run_after=8.0,
                    clients=[c.cid for c in PER_REQUEST + PER_REQUEST_NOCACHE])),
]}
