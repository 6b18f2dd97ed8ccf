#!/usr/bin/python3
"""Self-test of dnsresponder.py (the programmable DNS server of the end-to-end tests): what it
answers and how it encodes it.

    /usr/bin/python3 tests/e2e/test_dnsresponder.py [--keep]

Needs root: the script re-executes itself under `unshare --net --mount` (dnsresponder_selftest.py),
brings `lo` up and makes every mount private, so the server can bind port 53 on 127.0.0.1 and
127.0.0.3 without touching the host. No network beyond that private loopback is used.

It starts dnsresponder.py and checks, over UDP and TCP: answers and TTLs, the wire format, each
mode, the default, rotate, CNAME chains, truncation (1000 addresses), the hostile modes (garbage,
truncated, wrongid, badcounts, ptrloop), zone reload (also a malformed rewrite) and the query log.
test_dnsresponder_serving.py checks the rest (delay, malformed queries, glibc's resolver, exit);
dnsresponder_selftest.py has what both share (the zone, the helpers, the run).

Exit status: 0 pass, 1 fail (a check failed, or the harness could not run: the message says).
"""

import json
import os
import socket
import struct
import sys
import time

import dnsresponder as dr
from dnsresponder_selftest import (BIG, DNS1, DNS3, HOSTILE, ROT4, ROT6, SILENT_TIMEOUT, SRC, ZONE,
                                   Failure, check, main, q, section)


def check_answers():
    section("A/AAAA answers and TTLs on both addresses, UDP and TCP")
    for server in (DNS1, DNS3):
        for proto in ("udp", "tcp"):
            where = "%s %s" % (server, proto)
            rc, addrs, tc = q(server, "svc.test", "A", proto)
            check(rc == 0 and not tc and sorted(addrs) == [("127.0.0.10", 1), ("127.0.0.11", 5)],
                  "%s: svc.test A = .10 ttl 1 and .11 with its own ttl 5" % where,
                  (rc, addrs, tc))
            rc, addrs, tc = q(server, "svc.test", "AAAA", proto)
            check(rc == 0 and addrs == [("::1", 1)], "%s: svc.test AAAA = ::1 ttl 1" % where,
                  (rc, addrs))
    for name in ("SVC.Test", "svc.TEST.", "Svc.Test."):
        rc, addrs, _ = q(DNS1, name)
        check(rc == 0 and sorted(a for a, _ in addrs) == ["127.0.0.10", "127.0.0.11"],
              "case-insensitive, trailing dot: %s" % name, (rc, addrs))
    rc, addrs, _ = q(DNS1, "v4only.test", "AAAA")
    check(rc == 0 and addrs == [], "name without IPv6: AAAA is NOERROR with no answers",
          (rc, addrs))
    for qtype in ("MX", "TXT", 65):
        rc, addrs, _ = q(DNS1, "svc.test", qtype)
        check(rc == 0 and addrs == [], "other qtype %s: NOERROR, no answers" % qtype,
              (rc, addrs))


def check_wire():
    section("wire format")
    msg = dr.build_query("Svc.TEST", "A", qid=0x1234, rd=True)
    rep = dr.exchange(DNS1, msg)
    r = dr.parse_message(rep)
    qlen = len(msg) - 12
    check(rep[:2] == b"\x12\x34", "ID copied")
    check(r["qr"] and r["aa"] and r["ra"] and r["rd"], "QR, AA, RA set; RD copied when set",
          hex(r["flags"]))
    check(rep[12:12 + qlen] == msg[12:], "question section echoed byte for byte (case kept)")
    check(struct.unpack("!H", rep[4:6])[0] == 1, "question count 1")
    check(rep[12 + qlen:12 + qlen + 2] == b"\xc0\x0c", "answer owner is the pointer 0xC00C")
    check(r["answers"][0]["class"] == 1 and r["answers"][0]["type"] == 1, "answer is IN A")
    check(struct.unpack("!H", rep[10:12])[0] == 0, "no OPT in the reply to a query without one")
    r = dr.parse_message(dr.exchange(DNS1, dr.build_query("svc.test", rd=False)))
    check(not r["rd"] and r["qr"], "RD clear when the query had it clear", hex(r["flags"]))
    r = dr.parse_message(dr.exchange(DNS1, dr.build_query("nxdomain.test")))
    check(r["rcode"] == 3 and r["aa"], "NXDOMAIN carries AA")
    r = dr.parse_message(dr.exchange(DNS1, dr.build_query("svc.test", edns=4096)))
    opts = [a for a in r["additional"] if a["type"] == 41]
    check(len(opts) == 1 and opts[0]["class"] == 1232 and len(r["answers"]) == 2,
          "query with EDNS OPT answered, reply carries one OPT with payload 1232",
          r["additional"])
    r = dr.parse_message(dr.exchange(DNS1, dr.build_query("alias.test")))
    got = [(a["name"], a["type"], a["ttl"], a["data"]) for a in r["answers"]]
    check(got == [("alias.test", 5, 2, "mid.test"), ("mid.test", 5, 20, "target.test"),
                  ("target.test", 1, 30, "127.0.0.40"), ("target.test", 1, 30, "127.0.0.41")],
          "CNAME chain on the wire: alias -> mid -> target, then target's A records", got)


def check_modes():
    section("modes and default")
    for proto in ("udp", "tcp"):
        for name, want in (("servfail.test", 2), ("nxdomain.test", 3), ("refused.test", 5)):
            rc, addrs, _ = q(DNS1, name, "A", proto)
            check(rc == want and addrs == [], "%s %s: rcode %d" % (proto, name, want), rc)
        rc, addrs, _ = q(DNS1, "empty.test", "A", proto)
        check(rc == 0 and addrs == [], "%s empty.test: NOERROR, no answers" % proto, (rc, addrs))
        t0 = time.monotonic()
        try:
            got = q(DNS1, "silent.test", "A", proto, timeout=SILENT_TIMEOUT)
        except TimeoutError:
            got = "timeout after %.2fs" % (time.monotonic() - t0)
        check(isinstance(got, str), "%s silent.test: no reply (timeout)" % proto, got)
        rc, addrs, _ = q(DNS1, "unknown.test", "A", proto)
        check(rc == 3 and addrs == [], "%s unknown name: default nxdomain" % proto, rc)
    rc, addrs, _ = q(DNS1, "servfail.test", "AAAA")
    check(rc == 2, "a mode applies to every qtype (servfail AAAA)", rc)


def check_rotate():
    section("rotate")
    subsets = set()
    for i in range(50):
        proto = "tcp" if i % 10 == 0 else "udp"
        rc, addrs, _ = q(DNS1, "rot.test", "A", proto)
        got = [a for a, _ in addrs]
        if rc != 0 or len(got) != 2 or len(set(got)) != 2 or not set(got) <= set(ROT4) \
                or any(t != 3 for _, t in addrs):
            raise Failure("rot.test A: want 2 distinct of %s with ttl 3, got %r" % (ROT4, addrs))
        subsets.add(frozenset(got))
    check(len(subsets) > 1, "50 queries: each has exactly 2 of the 6 IPv4 addresses, "
          "%d distinct subsets" % len(subsets))
    subsets = set()
    for _ in range(20):
        rc, addrs, _ = q(DNS1, "rot.test", "AAAA")
        got = [a for a, _ in addrs]
        if len(got) != 2 or len(set(got)) != 2 or not set(got) <= set(ROT6):
            raise Failure("rot.test AAAA: want 2 distinct of %s, got %r" % (ROT6, addrs))
        subsets.add(frozenset(got))
    check(len(subsets) > 1, "rotate is per family: AAAA has 2 of the 3 IPv6 addresses, "
          "%d distinct subsets" % len(subsets))


def check_cname():
    section("CNAME")
    for proto in ("udp", "tcp"):
        rc, addrs, _ = q(DNS1, "alias.test", "A", proto)
        check(rc == 0 and sorted(addrs) == [("127.0.0.40", 30), ("127.0.0.41", 30)],
              "%s alias.test A: the target's addresses (CNAMEs skipped by query())" % proto,
              (rc, addrs))
    rc, addrs, _ = q(DNS1, "ALIAS.test", "AAAA")
    check(rc == 0 and addrs == [], "alias.test AAAA: target has no IPv6, NOERROR", (rc, addrs))
    r = dr.parse_message(dr.exchange(DNS1, dr.build_query("dangling.test")))
    check(r["rcode"] == 3 and [a["data"] for a in r["answers"]] == ["nowhere.test"],
          "CNAME to an unknown name: NXDOMAIN (the default) with the CNAME record",
          (r["rcode"], r["answers"]))


def check_truncation():
    section("truncation")
    rc, addrs, tc = q(DNS1, "big.test", "A", "udp")
    check(rc == 0 and tc and addrs == [], "big.test over UDP: TC set, empty answer section",
          (rc, len(addrs), tc))
    rc, addrs, tc = q(DNS1, "big.test", "A", "udp", edns=1232)
    check(tc and addrs == [], "big.test over UDP with EDNS 1232: still TC", (len(addrs), tc))
    rc, addrs, tc = q(DNS1, "big.test", "A", "tcp")
    check(rc == 0 and not tc and sorted(a for a, _ in addrs) == sorted(BIG)
          and all(t == 10 for _, t in addrs),
          "big.test over TCP: all 1000 addresses", (rc, len(addrs), tc))
    rc, addrs, tc = q(DNS1, "mid40.test", "A", "udp")
    check(tc and addrs == [], "40 addresses (~680 bytes) over UDP without EDNS: TC", tc)
    rc, addrs, tc = q(DNS1, "mid40.test", "A", "udp", edns=1232)
    check(not tc and len(addrs) == 40, "40 addresses over UDP with EDNS 1232: fits, no TC",
          (len(addrs), tc))



def _header(buf):
    return dict(zip(("id", "flags", "qd", "an", "ns", "ar"), struct.unpack_from("!HHHHHH", buf, 0)))


def _malformed(buf):
    try:
        dr.parse_message(buf)
    except dr.Malformed as e:
        return str(e)
    return None


def check_hostile(srv):
    section("hostile modes (garbage, truncated, wrongid, badcounts, ptrloop)")
    n0 = len(dr.read_log(srv.log))
    for proto in ("udp", "tcp"):
        msg = dr.build_query("garbage.test", qid=0x4242)
        a = dr.exchange(DNS1, msg, proto=proto)
        b = dr.exchange(DNS1, msg, proto=proto)
        h = _header(a)
        check(h["id"] == 0x4242 and h["flags"] & dr.F_QR and 12 <= len(a) <= 404 and a != b,
              "%s garbage: the query's ID and QR, then random bytes (%d and %d bytes, differ)"
              % (proto, len(a), len(b)))

        msg = dr.build_query("truncated.test", qid=0x4243)
        full = 12 + len(msg) - 12 + 2 * 16       # header, question, two A records
        r = dr.exchange(DNS1, msg, proto=proto)
        h = _header(r)
        why = _malformed(r)
        check(h["id"] == 0x4243 and h["an"] == 2 and not h["flags"] & dr.F_TC and len(r) == full - 2
              and why is not None,
              "%s truncated: 2 answers announced, cut inside the last (%d of %d bytes, TC clear): %s"
              % (proto, len(r), full, why))
        msg = dr.build_query("truncated.test", "AAAA", qid=0x4244)
        r = dr.exchange(DNS1, msg, proto=proto)
        check(_header(r)["an"] == 0 and len(r) < len(msg) and _malformed(r) is not None,
              "%s truncated without answers: cut inside the question" % proto)

        msg = dr.build_query("badcounts.test", qid=0x4245)
        r = dr.exchange(DNS1, msg, proto=proto)
        h = _header(r)
        why = _malformed(r)
        check(h["an"] == 9 and h["ns"] == 3 and why is not None,
              "%s badcounts: 9 answers and 3 authority records announced, 2 present: %s"
              % (proto, why))

        for qtype in ("A", "AAAA"):
            msg = dr.build_query("ptrloop.test", qtype, qid=0x4246)
            r = dr.exchange(DNS1, msg, proto=proto)
            h = _header(r)
            why = _malformed(r)
            check(h["an"] == (2 if qtype == "A" else 1) and why == "compression pointer loop",
                  "%s ptrloop %s: every answer's owner points at itself (%s)" % (proto, qtype, why))

    msg = dr.build_query("wrongid.test", qid=0x1111)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(msg, (DNS1, 53))
        r, _ = s.recvfrom(65535)
    check(_header(r)["id"] == 0x1111 ^ 0x5A5A and len(dr.parse_message(r)["answers"]) == 2,
          "udp wrongid: a well-formed answer with the ID XOR 0x5a5a")
    try:
        dr.exchange(DNS1, msg, timeout=0.3)
        dropped = False
    except TimeoutError:
        dropped = True
    check(dropped, "udp wrongid: exchange() drops it as a stray datagram and times out")
    r = dr.exchange(DNS1, msg, proto="tcp")
    check(_header(r)["id"] == 0x1111 ^ 0x5A5A, "tcp wrongid: the ID XOR 0x5a5a")

    time.sleep(0.1)
    lines = [e for e in dr.read_log(srv.log)[n0:] if "garbage" in e]
    modes = {e["garbage"] for e in lines}
    check(modes == set(dr.GARBAGE_MODES) and all(e["qname"] == e["garbage"] + ".test" for e in lines),
          "each hostile reply logged with \"garbage\": its mode", sorted(modes))
    check(all(e["rcode"] is None for e in lines if e["garbage"] == "garbage")
          and all(e["rcode"] == 0 and e["answers"] == HOSTILE
                  for e in lines if e["garbage"] != "garbage" and e["qtype"] == "A"),
          "garbage lines have rcode null; the others rcode 0 and the encoded addresses")
    for bad in ({"names": {}, "default": "garbage"}, {"names": {"x.test": {"mode": "noise"}}}):
        try:
            dr.parse_zone(json.dumps(bad))
            rejected = False
        except dr.ZoneError:
            rejected = True
        check(rejected, "zone rejected: %s" % json.dumps(bad))


def check_reload(srv):
    section("zone reload")
    zone = dict(ZONE, **{"svc.test": {"addrs": ["127.0.0.12"], "ttl": 2}})
    dr.write_zone(srv.zone, zone)
    rc, addrs, _ = q(DNS1, "svc.test")
    check(addrs == [("127.0.0.12", 2)], "atomic rewrite seen by the very next query", addrs)
    before = srv.stderr()
    # A malformed rewrite, also atomic: the previous zone stays, one line on stderr.
    tmp = srv.zone + ".bad"
    with open(tmp, "w") as f:
        f.write('{"names": {"svc.test": {"addrs": ["not-an-ip"]}}}\n')
    os.rename(tmp, srv.zone)
    for _ in range(3):
        rc, addrs, _ = q(DNS1, "svc.test")
        check(rc == 0 and addrs == [("127.0.0.12", 2)], "malformed zone: previous zone kept",
              addrs)
    new = srv.stderr()[len(before):].splitlines()
    check(len(new) == 1 and "not-an-ip" in new[0],
          "malformed zone: exactly one stderr line naming the problem", new)
    with open(tmp, "w") as f:
        f.write("{not json")
    os.rename(tmp, srv.zone)
    rc, addrs, _ = q(DNS1, "svc.test")
    check(addrs == [("127.0.0.12", 2)], "invalid JSON: previous zone kept", addrs)
    dr.write_zone(srv.zone, ZONE, default="refused")
    rc, _, _ = q(DNS1, "unknown.test")
    check(rc == 5, "default changed to refused: unknown name gets REFUSED", rc)
    rc, addrs, _ = q(DNS1, "svc.test")
    check(sorted(a for a, _ in addrs) == ["127.0.0.10", "127.0.0.11"], "zone restored", addrs)
    dr.write_zone(srv.zone, ZONE)
    check(len(srv.stderr()[len(before):].splitlines()) == 2,
          "two bad versions, two stderr lines in all")



def check_log(srv):
    section("query log")
    # A signature query per listen address and protocol, from a distinct source port each.
    for server in (DNS1, DNS3):
        for proto in ("udp", "tcp"):
            q(server, "v4only.test", "A", proto)
    time.sleep(0.1)
    log = dr.read_log(srv.log)
    keys = {"t", "listen", "src", "sport", "proto", "qname", "qtype", "rcode", "answers", "ttl",
            "tc"}
    queries = [e for e in log if "error" not in e]
    bad = [e for e in queries if set(e) - {"send_error", "garbage"} != keys]
    check(not bad, "all %d query lines have exactly the documented keys" % len(queries), bad[:3])
    sig = [e for e in queries if e["qname"] == "v4only.test" and e["qtype"] == "A"]
    got = sorted((e["listen"], e["proto"]) for e in sig)
    check(got == [(DNS1, "tcp"), (DNS1, "udp"), (DNS3, "tcp"), (DNS3, "udp")],
          "listen address and protocol recorded (127.0.0.1 vs 127.0.0.3)", got)
    e = sig[-1]
    check(e["src"] == SRC and isinstance(e["sport"], int) and e["sport"] > 0
          and e["rcode"] == 0 and e["answers"] == ["127.0.0.20"] and e["ttl"] == 7
          and e["tc"] is False and abs(e["t"] - time.time()) < 10,
          "a line's fields: src, sport, rcode, answers, ttl, tc, t", e)
    check(any(e["qname"] == "svc.test" for e in queries) and
          not any(e["qname"] != e["qname"].lower() or e["qname"].endswith(".") for e in queries),
          "qname lower case without trailing dot")
    check(any(e["qtype"] == "AAAA" for e in queries) and any(e["qtype"] == "15" for e in queries),
          "qtype AAAA by name, others as numbers (MX = \"15\")")
    sil = [e for e in queries if e["qname"] == "silent.test"]
    check(sil and all(e["rcode"] is None and e["answers"] == [] and e["ttl"] is None
                      for e in sil), "silent queries logged with rcode null", sil)
    big = [(e["proto"], e["tc"], len(e["answers"])) for e in queries if e["qname"] == "big.test"
           and e["src"] == SRC]
    check(("udp", True, 0) in big and ("tcp", False, 1000) in big,
          "big.test: UDP line has tc true and no answers, TCP line has 1000", big)
    al = [e for e in queries if e["qname"] == "alias.test" and e["qtype"] == "A"]
    check(al and all(e["ttl"] == 2 and sorted(e["answers"]) == ["127.0.0.40", "127.0.0.41"]
                     for e in al),
          "CNAME chain: answers are the target's addresses, ttl the minimum (the CNAME's 2)",
          al[:1])
    rot = [e for e in queries if e["qname"] == "rot.test" and e["qtype"] == "A"]
    check(len(rot) == 50 and all(len(e["answers"]) == 2 for e in rot),
          "rotate: 50 lines with 2 answers each")
    with open(srv.log, "rb") as f:
        raw = f.read()
    check(raw.endswith(b"\n") and all(json.loads(l) for l in raw.splitlines()),
          "every line of the file is complete JSON (%d lines)" % raw.count(b"\n"))
    partial = os.path.join(srv.wd, "partial.jsonl")
    with open(partial, "w") as f:
        f.write('{"a": 1}\n{"b": 2}\n{"c": ')
    check(dr.read_log(partial) == [{"a": 1}, {"b": 2}], "read_log skips a partial last line")


def checks(srv, wd):
    # In this order: check_log reads the log lines of the queries of the checks before it.
    check_answers()
    check_wire()
    check_modes()
    check_rotate()
    check_cname()
    check_truncation()
    check_hostile(srv)
    check_reload(srv)
    check_log(srv)


if __name__ == "__main__":
    sys.exit(main(os.path.abspath(__file__), checks))
