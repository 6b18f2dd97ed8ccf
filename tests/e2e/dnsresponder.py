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
                                          # addresses picked at random from addrs
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
import tempfile
import threading
import time

GARBAGE_MODES = ("garbage", "truncated", "wrongid", "badcounts", "ptrloop")
MODES = ("answer", "servfail", "nxdomain", "empty", "refused", "silent") + GARBAGE_MODES
MODE_RCODE = {"answer": 0, "empty": 0, "servfail": 2, "nxdomain": 3, "refused": 5, "silent": None}

T_A, T_CNAME, T_OPT, T_AAAA = 1, 5, 41, 28
CLASS_IN = 1
QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
          "SRV": 33, "OPT": 41, "ANY": 255}
QTYPE_NAMES = {T_A: "A", T_AAAA: "AAAA"}     # the log names only these; others are numbers

F_QR, F_AA, F_TC, F_RD, F_RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
UDP_LIMIT = 512              # classic DNS UDP message limit (RFC 1035)
EDNS_PAYLOAD = 1232          # what we advertise in our OPT record (DNS flag day 2020 value)
TCP_LIMIT = 65535            # the 2-byte TCP length prefix
MAX_CNAME_HOPS = 16
TCP_IDLE = 30.0              # seconds a TCP connection may sit idle before we close it
DEFAULT_TTL = 1


# --------------------------------------------------------------------------------------------
# zone
# --------------------------------------------------------------------------------------------

class ZoneError(Exception):
    """The zone file is unusable (message says why)."""


def norm_name(name):
    """Lower case, no trailing dot: the form used as zone key and in the log."""
    return name.lower().rstrip(".") if name not in (".", "") else ""


class Entry:
    """One name of a loaded zone (immutable once built)."""
    __slots__ = ("addrs4", "addrs6", "ttl", "mode", "rotate", "delay", "cname")

    def __init__(self, addrs4, addrs6, ttl, mode, rotate, delay, cname):
        self.addrs4 = addrs4      # tuple of (text, packed bytes, ttl)
        self.addrs6 = addrs6
        self.ttl = ttl
        self.mode = mode
        self.rotate = rotate      # None or int >= 1
        self.delay = delay        # float seconds
        self.cname = cname        # None or normalized target name


class Zone:
    def __init__(self, names, default):
        self.names = names        # normalized name -> Entry
        self.default = default


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _ttl(v, where):
    if not _is_int(v) or not 0 <= v <= 0x7FFFFFFF:
        raise ZoneError("%s: ttl must be an integer 0..2147483647, not %r" % (where, v))
    return v


def _encodable(name, where):
    try:
        encode_name(name)
    except ValueError as e:
        raise ZoneError("%s: %s" % (where, e))


def parse_zone(text):
    """Parse and validate zone JSON text; returns a Zone or raises ZoneError."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ZoneError("not valid JSON: %s" % e)
    if not isinstance(doc, dict):
        raise ZoneError("top level must be an object")
    extra = set(doc) - {"names", "default"}
    if extra:
        raise ZoneError("unknown top-level keys %s" % sorted(extra))
    default = doc.get("default", "nxdomain")
    if default not in MODES or default == "answer" or default in GARBAGE_MODES:
        raise ZoneError("default must be one of %s, not %r"
                        % ([m for m in MODES if m != "answer" and m not in GARBAGE_MODES],
                           default))
    names = doc.get("names")
    if not isinstance(names, dict):
        raise ZoneError('"names" must be an object')
    out = {}
    for raw_name, spec in names.items():
        where = "name %r" % raw_name
        name = norm_name(raw_name)
        _encodable(name, where)
        if name in out:
            raise ZoneError("%s: listed twice (names are case-insensitive)" % where)
        if not isinstance(spec, dict):
            raise ZoneError("%s: must be an object" % where)
        extra = set(spec) - {"addrs", "ttl", "mode", "rotate", "delay", "cname"}
        if extra:
            raise ZoneError("%s: unknown keys %s" % (where, sorted(extra)))
        ttl = _ttl(spec.get("ttl", DEFAULT_TTL), where)
        mode = spec.get("mode", "answer")
        if mode not in MODES:
            raise ZoneError("%s: mode must be one of %s, not %r" % (where, list(MODES), mode))
        rotate = spec.get("rotate")
        if rotate is not None and (not _is_int(rotate) or rotate < 1):
            raise ZoneError("%s: rotate must be an integer >= 1, not %r" % (where, rotate))
        delay = spec.get("delay", 0.0)
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay < 3600:
            raise ZoneError("%s: delay must be a number of seconds >= 0, not %r" % (where, delay))
        cname = spec.get("cname")
        if cname is not None:
            if not isinstance(cname, str) or not norm_name(cname):
                raise ZoneError("%s: cname must be a non-empty name, not %r" % (where, cname))
            cname = norm_name(cname)
            _encodable(cname, where + " cname")
        addrs = spec.get("addrs", [])
        if not isinstance(addrs, list):
            raise ZoneError("%s: addrs must be a list" % where)
        a4, a6 = [], []
        for a in addrs:
            a_ttl = ttl
            if isinstance(a, dict):
                if set(a) - {"addr", "ttl"} or "addr" not in a:
                    raise ZoneError('%s: an address object has exactly "addr" and optionally '
                                    '"ttl", not %r' % (where, a))
                if "ttl" in a:
                    a_ttl = _ttl(a["ttl"], "%s address %r" % (where, a.get("addr")))
                a = a["addr"]
            try:
                ip = ipaddress.ip_address(a)
            except ValueError:
                raise ZoneError("%s: %r is not an IP address" % (where, a))
            (a4 if ip.version == 4 else a6).append((str(ip), ip.packed, a_ttl))
        out[name] = Entry(tuple(a4), tuple(a6), ttl, mode, rotate, float(delay), cname)
    return Zone(out, default)


class ZoneFile:
    """The zone, re-read when the file changes.

    os.stat on every query is cheap and makes a rewrite visible to the very next query, which is
    what a test driver wants (no SIGHUP, no polling interval to wait out). The driver replaces the
    file with rename, so the inode changes even when size and mtime do not."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.key = None
        self.zone = None
        self._load(startup=True)

    @staticmethod
    def _key(st):
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self, startup=False):
        # Key and content come from the same open file (fstat), so a rename racing with the read
        # can at worst cause one extra reload, never a stale zone under a new key.
        try:
            with open(self.path, "rb") as f:
                key = self._key(os.fstat(f.fileno()))
                text = f.read().decode("utf-8")
            zone = parse_zone(text)
        except (OSError, UnicodeDecodeError, ZoneError) as e:
            if startup:
                raise ZoneError("%s: %s" % (self.path, e))
            # Remember the bad version so the complaint is printed once, not once per query.
            try:
                self.key = self._key(os.stat(self.path))
            except OSError:
                self.key = ("unreadable",)
            print("dnsresponder: zone %s unusable, keeping the previous zone: %s"
                  % (self.path, e), file=sys.stderr, flush=True)
            return
        self.key = key
        self.zone = zone

    def get(self):
        try:
            key = self._key(os.stat(self.path))
        except OSError:
            key = ("unreadable",)
        if key != self.key:
            with self.lock:
                if key != self.key:
                    self._load()
        return self.zone


# --------------------------------------------------------------------------------------------
# wire format
# --------------------------------------------------------------------------------------------

class Malformed(Exception):
    """A message we cannot parse."""


def encode_name(name):
    """'svc.test' -> b'\\x03svc\\x04test\\x00' (raises ValueError on a bad label)."""
    name = name.rstrip(".") if name not in ("", ".") else ""
    out = b""
    for label in (name.split(".") if name else []):
        b = label.encode("ascii") if label.isascii() else label.encode("idna")
        if not 1 <= len(b) <= 63:
            raise ValueError("label %r must be 1..63 bytes" % label)
        out += bytes([len(b)]) + b
    out += b"\0"
    if len(out) > 255:
        raise ValueError("name %r longer than 255 bytes" % name)
    return out


def read_name(buf, off):
    """Read a possibly compressed name at off. Returns (dotted name, offset after it)."""
    labels = []
    end = None
    total = 0
    for _ in range(128):          # bounds pointer loops
        if off >= len(buf):
            raise Malformed("name runs past the end of the message")
        ln = buf[off]
        if ln == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        if ln & 0xC0 == 0xC0:
            if off + 2 > len(buf):
                raise Malformed("truncated compression pointer")
            if end is None:
                end = off + 2
            off = struct.unpack_from("!H", buf, off)[0] & 0x3FFF
            continue
        if ln & 0xC0:
            raise Malformed("unsupported label type 0x%02x" % ln)
        if off + 1 + ln > len(buf):
            raise Malformed("label runs past the end of the message")
        total += ln + 1
        if total > 255:
            raise Malformed("name longer than 255 bytes")
        labels.append(buf[off + 1:off + 1 + ln].decode("latin-1"))
        off += 1 + ln
    raise Malformed("compression pointer loop")


def skip_rr(buf, off):
    """Skip one resource record; returns (type, class, ttl, rdata offset, rdlen, next offset)."""
    _, off = read_name(buf, off)
    if off + 10 > len(buf):
        raise Malformed("truncated resource record")
    rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", buf, off)
    off += 10
    if off + rdlen > len(buf):
        raise Malformed("record data runs past the end of the message")
    return rtype, rclass, ttl, off, rdlen, off + rdlen


class Query:
    __slots__ = ("id", "flags", "qname", "qtype", "question", "edns")


def parse_query(buf):
    """Parse an incoming query. Raises Malformed for anything we will not answer."""
    if len(buf) < 12:
        raise Malformed("message shorter than the 12-byte header (%d bytes)" % len(buf))
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", buf, 0)
    if flags & F_QR:
        raise Malformed("QR set: a response, not a query")
    opcode = (flags >> 11) & 0xF
    if opcode != 0:
        raise Malformed("unsupported opcode %d" % opcode)
    if qd != 1:
        raise Malformed("question count %d (expected 1)" % qd)
    # The question name must be plain labels: a pointer could only point back into the header.
    off = 12
    labels = []
    while True:
        if off >= len(buf):
            raise Malformed("question name runs past the end of the message")
        ln = buf[off]
        if ln == 0:
            off += 1
            break
        if ln & 0xC0:
            raise Malformed("compressed or extended label in the question")
        if off + 1 + ln > len(buf):
            raise Malformed("question label runs past the end of the message")
        labels.append(buf[off + 1:off + 1 + ln])
        off += 1 + ln
    if off - 12 > 255:
        raise Malformed("question name longer than 255 bytes")
    if off + 4 > len(buf):
        raise Malformed("question truncated before type/class")
    qtype, _qclass = struct.unpack_from("!HH", buf, off)
    off += 4
    q = Query()
    q.id, q.flags, q.qtype = qid, flags, qtype
    q.qname = b".".join(labels).lower().decode("latin-1")   # ASCII-only case folding, as DNS
    q.question = bytes(buf[12:off])
    # EDNS: look for an OPT record in the additional section. Anything unparsable after the
    # question is tolerated (treated as "no EDNS"): the question is all we need to answer.
    q.edns = None
    try:
        for i in range(an + ns + ar):
            rtype, rclass, _, _, _, off = skip_rr(buf, off)
            if rtype == T_OPT and i >= an + ns:
                q.edns = rclass                 # the requester's UDP payload size
    except Malformed:
        pass
    return q


def qtype_name(qtype):
    return QTYPE_NAMES.get(qtype, str(qtype))


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
            if entry.rotate is not None and entry.rotate < len(pool):
                pool = random.sample(pool, entry.rotate)
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


def _recv_exact(conn, n):
    """n bytes, or None on EOF before all of them (b"" for n == 0)."""
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


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


# --------------------------------------------------------------------------------------------
# helpers for test drivers
# --------------------------------------------------------------------------------------------

def write_zone(path, names, default="nxdomain"):
    """Write a zone file atomically: a temporary file in the same directory, then rename, so the
    server never reads a half-written file and always sees a new inode."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".zone-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"names": names, "default": default}, f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _qtype_number(qtype):
    if _is_int(qtype):
        return qtype
    s = str(qtype).upper()
    return QTYPES[s] if s in QTYPES else int(s)


def build_query(name, qtype="A", qid=None, rd=True, edns=None):
    """Encode a query. edns: None (no OPT) or the UDP payload size to advertise."""
    if qid is None:
        qid = random.randrange(65536)
    header = struct.pack("!HHHHHH", qid, F_RD if rd else 0, 1, 0, 0, 1 if edns else 0)
    msg = header + encode_name(name) + struct.pack("!HH", _qtype_number(qtype), CLASS_IN)
    if edns:
        msg += struct.pack("!BHHIH", 0, T_OPT, edns, 0, 0)
    return msg


def parse_message(buf):
    """Decode a whole message (for checks): a dict with id, flags, rcode, tc, aa, rd, ra,
    question (raw bytes), answers and additional (lists of dicts: name, type, class, ttl, data;
    data is the address text for A/AAAA, the target for CNAME, raw bytes otherwise)."""
    if len(buf) < 12:
        raise Malformed("message shorter than 12 bytes")
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", buf, 0)
    off = 12
    for _ in range(qd):
        _, off = read_name(buf, off)
        off += 4
    if off > len(buf):
        raise Malformed("question runs past the end of the message")
    out = {"id": qid, "flags": flags, "rcode": flags & 0xF, "tc": bool(flags & F_TC),
           "aa": bool(flags & F_AA), "rd": bool(flags & F_RD), "ra": bool(flags & F_RA),
           "qr": bool(flags & F_QR), "question": bytes(buf[12:off]),
           "answers": [], "authority": [], "additional": []}
    sections = ["answers"] * an + ["authority"] * ns + ["additional"] * ar
    for sec in sections:
        name, _ = read_name(buf, off)
        rtype, rclass, ttl, roff, rdlen, off = skip_rr(buf, off)
        rdata = bytes(buf[roff:roff + rdlen])
        if rtype == T_A and rdlen == 4:
            data = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == T_AAAA and rdlen == 16:
            data = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == T_CNAME:
            data, _ = read_name(buf, roff)
        else:
            data = rdata
        out[sec].append({"name": name, "type": rtype, "class": rclass, "ttl": ttl, "data": data})
    return out


def exchange(server_addr, msg, port=53, proto="udp", timeout=1.0, src=None):
    """Send one raw message and return the raw reply (the one with the same ID, over UDP).
    Raises TimeoutError when nothing comes back in time."""
    fam = socket.AF_INET6 if ":" in server_addr else socket.AF_INET
    deadline = time.monotonic() + timeout
    if proto == "tcp":
        with socket.create_connection((server_addr, port), timeout=timeout,
                                      source_address=(src, 0) if src else None) as s:
            s.sendall(struct.pack("!H", len(msg)) + msg)
            s.settimeout(max(0.001, deadline - time.monotonic()))
            head = _recv_exact(s, 2)
            body = _recv_exact(s, struct.unpack("!H", head)[0]) if head else None
            if body is None:
                raise ConnectionError("server closed the TCP connection without a reply")
            return body
    if proto != "udp":
        raise ValueError("proto must be udp or tcp")
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        if src:
            s.bind((src, 0))
        s.connect((server_addr, port))
        s.send(msg)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from %s:%d within %.2fs" % (server_addr, port,
                                                                         timeout))
            s.settimeout(left)
            buf = s.recv(65535)
            if buf[:2] == msg[:2]:           # ignore stray datagrams with another ID
                return buf


def query(server_addr, name, qtype="A", port=53, proto="udp", timeout=1.0, src=None,
          edns=None):
    """Ask server_addr for name/qtype. Returns (rcode, [(addr, ttl), ...], tc_flag): the A and
    AAAA records of the answer section (CNAMEs skipped). src: source address to send from.
    edns: advertise this UDP payload size in an OPT record (default: no OPT).
    Raises TimeoutError when the server does not answer, ValueError when the reply does not
    match the query (ID, QR, question section)."""
    msg = build_query(name, qtype, edns=edns)
    buf = exchange(server_addr, msg, port=port, proto=proto, timeout=timeout, src=src)
    r = parse_message(buf)
    qlen = len(encode_name(name)) + 4
    if r["id"] != struct.unpack("!H", msg[:2])[0] or not r["qr"]:
        raise ValueError("reply has the wrong ID or QR clear")
    if r["question"] != msg[12:12 + qlen]:
        raise ValueError("reply question %r differs from the query's %r"
                         % (r["question"], msg[12:12 + qlen]))
    addrs = [(a["data"], a["ttl"]) for a in r["answers"] if a["type"] in (T_A, T_AAAA)]
    return r["rcode"], addrs, r["tc"]


def read_log(path):
    """The query log as a list of dicts. A last line without its newline (being written right
    now) is skipped. A missing file reads as empty."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()                  # "" after the last newline, or a partial line
    return [json.loads(line) for line in lines if line.strip()]


if __name__ == "__main__":
    sys.exit(serve())
