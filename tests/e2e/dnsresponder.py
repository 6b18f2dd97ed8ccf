#!/usr/bin/python3
"""A small programmable DNS server for end-to-end tests (python standard library only).

    /usr/bin/python3 dnsresponder.py --listen 127.0.0.1 [--listen 127.0.0.3 ...] [--port 53]
                                     --zone ZONE.json --log QUERIES.jsonl [--pid-file F]

Serves UDP and TCP on every --listen address (IPv4 or IPv6; one UDP socket and one TCP listening
socket per address, bound to exactly that address). Prints "ready" on stdout once every socket is
bound and the zone is loaded; exits 0 on SIGTERM/SIGINT. Exit status 2 if it cannot start
(bad arguments, unusable zone at startup, a socket cannot be bound).

Zone file (JSON, re-read whenever its inode, size or mtime changes; checked on every query):

    {"names": {
        "svc.test": {"addrs": ["127.0.0.10", "::1", {"addr": "127.0.0.11", "ttl": 5}],
                     "ttl": 1,            # default 1; a per-address "ttl" overrides it
                     "mode": "answer",    # answer | servfail | nxdomain | empty | refused | silent
                                          # or a hostile mode: garbage | truncated | wrongid |
                                          # badcounts | ptrloop (see below)
                     "rotate": 2,         # optional: per query and family, answer this many
                                          # addresses picked at random from addrs (all of
                                          # them: the whole set, in a random order)
                     "delay": 0.0,        # optional: seconds to wait before answering
                     "cname": "other.test"},  # optional: see below
        ...},
     "default": "nxdomain"}               # mode for names not in the zone (any mode but answer)

Every key but "names" is optional; unknown keys are rejected (a typo must not silently change a
test). A malformed file leaves the previous zone in force and prints one line on stderr.

Answering: names are case-insensitive, with or without the trailing dot. The mode applies to every
query type. In answer mode an A query gets the IPv4 addresses, an AAAA query the IPv6 ones (NOERROR
with no answers when the name has none of that family) and any other type NOERROR with no answers.
A name with "cname" answers A/AAAA with a CNAME record (TTL = this name's ttl; its own addrs are
ignored) and then the target's records, followed the way a recursive resolver would: the target's
mode applies (nxdomain/empty keep the CNAME records, with rcode 3/0; servfail/refused drop them;
silent sends nothing), an unknown target gets "default", chains are followed up to 16 hops, a loop
ends the chain. "delay" is the queried name's only.

Hostile modes (the queried name's, like "delay"; for tests of resolvers that must survive a bad
server): the reply is built as in answer mode, from this name's addrs, then broken, over UDP and
TCP alike:
    garbage    the query's ID and QR|RD|RA, then 10..400 random bytes (random counts too)
    truncated  cut in the middle of its last record (of the question when it has none), TC clear
    wrongid    the ID of the query XOR 0x5a5a (a resolver must drop it and time out)
    badcounts  the answer count 7 higher and an authority count of 3, with no such records
    ptrloop    every answer's owner name a compression pointer to itself (a name with no end);
               a reply with no answer gets one such A record
Their log lines carry "garbage": MODE, "rcode" as sent in the header (null for garbage), "answers"
the addresses encoded in the broken reply.

Every reply copies the ID and RD, sets QR, AA and RA, echoes the question bytes exactly and names
the question name in answers with the pointer 0xC00C. A query with an EDNS OPT record gets an OPT
record back (payload 1232) and may receive UDP replies up to its advertised size (at least 512);
without OPT the UDP limit is 512. A UDP reply over the limit is sent with TC set and no answers,
so the resolver retries over TCP, where everything fits up to 65535 bytes (beyond that the trailing
answers are dropped and TC is set).

Query log (JSON lines, appended, one per query, flushed):

    {"t": 1700000000.123, "listen": "127.0.0.1", "src": "127.0.0.2", "sport": 40000,
     "proto": "udp", "qname": "svc.test", "qtype": "A", "rcode": 0,
     "answers": ["127.0.0.10"], "ttl": 1, "tc": false}

"t" is the arrival time (a delayed answer is logged when it is sent); "answers" lists the addresses
actually sent; "ttl" is the smallest TTL among the answer records (CNAMEs included) or null;
"rcode" is null for silent; replies of a hostile mode add "garbage" (above). Malformed messages are not answered and are logged as
{"t", "listen", "src", "sport", "proto", "error": "..."}.

Helpers for test drivers (import this file): write_zone(), query(), read_log(), and the lower
level build_query() / parse_message().

The file is split by concern, and this one re-exports the others' names (drivers import them from
here): dnsresponder_wire.py (the wire format), dnsresponder_zone.py (the zone file, write_zone),
dnsresponder_client.py (query, exchange, parse_message, read_log); this file has the answers
(resolve, build_reply, the hostile modes) and the server.
"""

import argparse
import ipaddress
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

from dnsresponder_client import (_qtype_number, build_query, exchange, parse_message, query,
                                 read_log)
from dnsresponder_wire import (CLASS_IN, EDNS_PAYLOAD, F_AA, F_QR, F_RA, F_RD, F_TC, QTYPE_NAMES,
                               QTYPES, T_A, T_AAAA, T_CNAME, T_OPT, TCP_LIMIT, UDP_LIMIT,
                               Malformed, Query, _recv_exact, encode_name, parse_query,
                               qtype_name, read_name, skip_rr)
from dnsresponder_zone import (DEFAULT_TTL, GARBAGE_MODES, MODE_RCODE, MODES, Entry, Zone,
                               ZoneError, ZoneFile, _is_int, norm_name, parse_zone, write_zone)

MAX_CNAME_HOPS = 16
TCP_IDLE = 30.0              # seconds a TCP connection may sit idle before we close it

# What the drivers import from here (most of it re-exported from the modules above).
__all__ = ["CLASS_IN", "DEFAULT_TTL", "EDNS_PAYLOAD", "Entry", "F_AA", "F_QR", "F_RA", "F_RD",
           "F_TC", "GARBAGE_MODES", "MAX_CNAME_HOPS", "MODES", "MODE_RCODE", "Malformed", "QTYPES",
           "QTYPE_NAMES", "Query", "QueryLog", "Server", "TCP_IDLE", "TCP_LIMIT", "T_A", "T_AAAA",
           "T_CNAME", "T_OPT", "UDP_LIMIT", "Zone", "ZoneError", "ZoneFile", "_is_int",
           "_qtype_number", "_recv_exact", "build_query", "build_reply", "encode_name", "exchange",
           "garbage_mode", "mangle", "norm_name", "parse_message", "parse_query", "parse_zone",
           "qtype_name", "query", "read_log", "read_name", "resolve", "serve", "skip_rr",
           "write_zone"]


# --------------------------------------------------------------------------------------------
# answers
# --------------------------------------------------------------------------------------------

def resolve(zone, qname, qtype):
    """What to answer. Returns (rcode or None for silent, records, delay), records being
    ("CNAME", owner, ttl, target) and ("A"/"AAAA", owner, ttl, text, packed) tuples in order."""
    entry = zone.names.get(qname)
    delay = entry.delay if entry is not None else 0.0
    records = []
    name = qname
    seen = {qname}
    for _ in range(MAX_CNAME_HOPS + 1):
        mode = entry.mode if entry is not None else zone.default
        if mode in GARBAGE_MODES:
            mode = "answer"          # built as an answer, broken afterwards (see mangle)
        if mode != "answer":
            rcode = MODE_RCODE[mode]
            if rcode in (None, 2, 5):
                records = []        # a failing target fails the whole answer, CNAMEs included
            return rcode, records, delay
        if qtype not in (T_A, T_AAAA):
            return 0, records, delay
        if entry.cname is None:
            pool = entry.addrs4 if qtype == T_A else entry.addrs6
            if entry.rotate is not None and entry.rotate <= len(pool):
                pool = random.sample(pool, entry.rotate)   # as many as there are: shuffled
            rt = "A" if qtype == T_A else "AAAA"
            records.extend((rt, name, ttl, text, packed) for text, packed, ttl in pool)
            return 0, records, delay
        records.append(("CNAME", name, entry.ttl, entry.cname))
        if entry.cname in seen:
            break                    # a loop: answer the CNAMEs so far
        seen.add(entry.cname)
        name = entry.cname
        entry = zone.names.get(name)
    return 0, records, delay


def build_reply(q, rcode, records, limit, partial=False):
    """Encode a reply. limit is the largest message allowed (UDP: 512 or the EDNS payload size;
    TCP: 65535). Over the limit, TC is set and the answer section is emptied, or with partial
    (TCP, where nothing larger exists to retry with) cut to what fits.
    Returns (message bytes, addresses sent, min ttl or None, tc flag)."""
    opt = struct.pack("!BHHIH", 0, T_OPT, EDNS_PAYLOAD, 0, 0) if q.edns is not None else b""
    prefix_len = 12 + len(q.question)
    # Owners are the question name (pointer to offset 12) or a CNAME target, which we point at
    # where that target was written as the previous CNAME's rdata.
    name_ptr = {q.qname: 12}
    rrs = []
    size = prefix_len
    for rec in records:
        owner = struct.pack("!H", 0xC000 | name_ptr[rec[1]])
        if rec[0] == "CNAME":
            rdata = encode_name(rec[3])
            if size + 12 < 0x4000:            # pointers reach only 14 bits of offset
                name_ptr.setdefault(rec[3], size + 12)
            else:
                name_ptr.setdefault(rec[3], name_ptr[rec[1]])  # unreachable in practice
            rr = owner + struct.pack("!HHIH", T_CNAME, CLASS_IN, rec[2], len(rdata)) + rdata
        else:
            rt = T_A if rec[0] == "A" else T_AAAA
            rr = owner + struct.pack("!HHIH", rt, CLASS_IN, rec[2], len(rec[4])) + rec[4]
        rrs.append((rr, rec))
        size += len(rr)
    tc = False
    if size + len(opt) > limit:
        tc = True
        if not partial:
            rrs = []                 # UDP: no partial answers, the resolver retries over TCP
        else:
            while rrs and size + len(opt) > limit:
                size -= len(rrs.pop()[0])
    flags = F_QR | F_AA | F_RA | (q.flags & F_RD) | (F_TC if tc else 0) | (rcode & 0xF)
    header = struct.pack("!HHHHHH", q.id, flags, 1, len(rrs), 0, 1 if opt else 0)
    msg = header + q.question + b"".join(rr for rr, _ in rrs) + opt
    addrs = [rec[3] for _, rec in rrs if rec[0] != "CNAME"]
    ttl = min((rec[2] for _, rec in rrs), default=None)
    return msg, addrs, ttl, tc


def garbage_mode(zone, qname):
    """The queried name's hostile mode, or None."""
    entry = zone.names.get(qname)
    return entry.mode if entry is not None and entry.mode in GARBAGE_MODES else None


def _answer_offsets(msg):
    """Offsets of the answer records of a reply we built (owner name is always a 2-byte pointer)."""
    an = struct.unpack_from("!H", msg, 6)[0]
    off = 12
    _, off = read_name(msg, off)
    off += 4
    offsets = []
    for _ in range(an):
        offsets.append(off)
        rdlen = struct.unpack_from("!H", msg, off + 10)[0]
        off += 12 + rdlen
    return offsets


def mangle(mode, q, msg):
    """Break a reply the way `mode` says (module docstring, "Hostile modes").
    Returns (bytes, rcode as sent or None)."""
    if mode == "garbage":
        head = struct.pack("!HH", q.id, F_QR | F_RA | (q.flags & F_RD))
        return head + os.urandom(random.randint(10, 400)), None
    rcode = struct.unpack_from("!H", msg, 2)[0] & 0xF
    if mode == "wrongid":
        return struct.pack("!H", q.id ^ 0x5A5A) + msg[2:], rcode
    if mode == "badcounts":
        an = struct.unpack_from("!H", msg, 6)[0]
        return msg[:6] + struct.pack("!HH", an + 7, 3) + msg[10:], rcode
    offsets = _answer_offsets(msg)
    if mode == "truncated":
        if offsets:
            rdlen = struct.unpack_from("!H", msg, offsets[-1] + 10)[0]
            cut = offsets[-1] + 12 + rdlen // 2                            # inside the last rdata
        else:
            cut = 12 + len(q.question) - 3                                 # inside the question
        return msg[:cut], rcode
    if mode == "ptrloop":
        if not offsets:
            # An A record of our own, appended before any OPT record.
            qend = 12 + len(q.question)
            extra = msg[qend:]
            off = qend
            rr = struct.pack("!H", 0xC000 | off) + struct.pack("!HHIH", T_A, CLASS_IN, 1, 4) \
                + b"\x7f\x00\x00\x63"
            return msg[:6] + struct.pack("!H", 1) + msg[8:qend] + rr + extra, rcode
        buf = bytearray(msg)
        for off in offsets:
            struct.pack_into("!H", buf, off, 0xC000 | off)
        return bytes(buf), rcode
    raise ValueError("not a hostile mode: %r" % mode)


# --------------------------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------------------------

class QueryLog:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1, encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, rec):
        line = json.dumps(rec) + "\n"
        with self.lock:                      # lines from different threads never interleave
            if self.f is not None:
                self.f.write(line)
                self.f.flush()

    def close(self):
        with self.lock:
            if self.f is not None:
                self.f.close()
                self.f = None


class Server:
    def __init__(self, listen, port, zonefile, qlog):
        self.listen = listen
        self.port = port
        self.zonefile = zonefile
        self.qlog = qlog
        self.socks = []
        self.stopping = threading.Event()

    def bind(self):
        for addr in self.listen:
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            u = socket.socket(fam, socket.SOCK_DGRAM)
            u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            u.bind((addr, self.port))
            t = socket.socket(fam, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind((addr, self.port))
            t.listen(64)
            self.socks += [u, t]
            self._thread(self.udp_loop, u, addr)
            self._thread(self.tcp_accept_loop, t, addr)

    @staticmethod
    def _thread(fn, *args):
        th = threading.Thread(target=fn, args=args, daemon=True)
        th.start()
        return th

    def close(self):
        self.stopping.set()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass

    # --- one query, whatever the transport ---

    def handle(self, data, listen, peer, proto, send):
        """Answer one message. send(bytes) delivers the reply; it may be called from a timer
        thread when the name has a delay."""
        t = time.time()
        base = {"t": t, "listen": listen, "src": peer[0], "sport": peer[1], "proto": proto}
        try:
            q = parse_query(data)
        except Malformed as e:
            self.qlog.write(dict(base, error=str(e)))
            return
        zone = self.zonefile.get()
        rcode, records, delay = resolve(zone, q.qname, q.qtype)
        rec = dict(base, qname=q.qname, qtype=qtype_name(q.qtype), rcode=rcode,
                   answers=[], ttl=None, tc=False)
        if rcode is None:                     # silent
            self.qlog.write(rec)
            return
        if proto == "udp":
            limit = UDP_LIMIT if q.edns is None else max(UDP_LIMIT, min(q.edns, TCP_LIMIT))
        else:
            limit = TCP_LIMIT
        msg, addrs, ttl, tc = build_reply(q, rcode, records, limit, partial=(proto == "tcp"))
        rec.update(answers=addrs, ttl=ttl, tc=tc)
        hostile = garbage_mode(zone, q.qname)
        if hostile is not None:
            msg, sent_rcode = mangle(hostile, q, msg)
            rec.update(garbage=hostile, rcode=sent_rcode)
            if hostile == "garbage":
                rec.update(answers=[], ttl=None)

        def respond():
            try:
                send(msg)
            except OSError as e:
                rec["send_error"] = str(e)    # e.g. the TCP client gave up during a delay
            self.qlog.write(rec)

        if delay > 0:
            # A timer thread, so a slow name never holds up the socket's other queries.
            timer = threading.Timer(delay, respond)
            timer.daemon = True
            timer.start()
        else:
            respond()

    def _guard(self, listen, peer, proto, fn, *args):
        # Nothing a client sends may kill a serving thread.
        try:
            fn(*args)
        except Exception as e:
            self.qlog.write({"t": time.time(), "listen": listen, "src": peer[0],
                             "sport": peer[1], "proto": proto,
                             "error": "internal: %s: %s" % (type(e).__name__, e)})

    # --- UDP ---

    def udp_loop(self, sock, listen):
        while not self.stopping.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                if self.stopping.is_set():
                    return
                continue
            self._guard(listen, peer, "udp", self.handle, data, listen, peer, "udp",
                        lambda msg, peer=peer: sock.sendto(msg, peer))

    # --- TCP ---

    def tcp_accept_loop(self, sock, listen):
        while not self.stopping.is_set():
            try:
                conn, peer = sock.accept()
            except OSError:
                if self.stopping.is_set():
                    return
                time.sleep(0.01)              # e.g. EMFILE: do not spin
                continue
            self._thread(self.tcp_conn, conn, peer, listen)

    def tcp_conn(self, conn, peer, listen):
        wlock = threading.Lock()              # delayed replies are written from timer threads

        def send(msg):
            with wlock:
                conn.sendall(struct.pack("!H", len(msg)) + msg)

        conn.settimeout(TCP_IDLE)
        try:
            while not self.stopping.is_set():
                head = _recv_exact(conn, 2)
                if head is None:
                    return                    # clean close between messages
                (n,) = struct.unpack("!H", head)
                body = _recv_exact(conn, n)
                if body is None:
                    self.qlog.write({"t": time.time(), "listen": listen, "src": peer[0],
                                     "sport": peer[1], "proto": "tcp",
                                     "error": "connection closed inside a %d-byte message" % n})
                    return
                self._guard(listen, peer, "tcp", self.handle, body, listen, peer, "tcp", send)
        except OSError:
            pass                              # reset, idle timeout: just drop the connection
        finally:
            # A delayed reply still pending gets an OSError on send, which is logged with it.
            try:
                conn.close()
            except OSError:
                pass


def serve(argv=None):
    ap = argparse.ArgumentParser(description="Programmable DNS server for end-to-end tests.")
    ap.add_argument("--listen", action="append", required=True,
                    help="address to serve on (UDP and TCP); repeatable")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--zone", required=True, help="zone JSON file (re-read when it changes)")
    ap.add_argument("--log", required=True, help="query log, JSON lines, appended")
    ap.add_argument("--pid-file")
    opts = ap.parse_args(argv)

    listen = []
    for a in opts.listen:
        try:
            a = str(ipaddress.ip_address(a))
        except ValueError:
            ap.error("--listen %r is not an IP address" % a)
        if a not in listen:
            listen.append(a)

    try:
        zonefile = ZoneFile(opts.zone)
    except ZoneError as e:
        print("dnsresponder: cannot start: zone %s" % e, file=sys.stderr, flush=True)
        return 2

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    qlog = QueryLog(opts.log)
    server = Server(listen, opts.port, zonefile, qlog)
    try:
        server.bind()
    except OSError as e:
        print("dnsresponder: cannot bind: %s" % e, file=sys.stderr, flush=True)
        server.close()
        qlog.close()
        return 2
    if opts.pid_file:
        with open(opts.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    print("ready", flush=True)

    while not stop.wait(0.5):
        pass
    server.close()
    qlog.close()
    if opts.pid_file:
        try:
            os.unlink(opts.pid_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(serve())
