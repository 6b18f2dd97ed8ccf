"""The DNS wire format of tests/e2e/dnsresponder.py (split out of it; dnsresponder.py re-exports
every name here): record types, header flags and size limits, names (encoded, read with
compression), resource records, an incoming query's parse, and TCP's exact reads. Python
standard library only.
"""

import struct

T_A, T_CNAME, T_OPT, T_AAAA = 1, 5, 41, 28
CLASS_IN = 1
QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
          "SRV": 33, "OPT": 41, "ANY": 255}
QTYPE_NAMES = {T_A: "A", T_AAAA: "AAAA"}     # the log names only these; others are numbers

F_QR, F_AA, F_TC, F_RD, F_RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
UDP_LIMIT = 512              # classic DNS UDP message limit (RFC 1035)
EDNS_PAYLOAD = 1232          # what we advertise in our OPT record (DNS flag day 2020 value)
TCP_LIMIT = 65535            # the 2-byte TCP length prefix


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


def _recv_exact(conn, n):
    """n bytes, or None on EOF before all of them (b"" for n == 0)."""
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
