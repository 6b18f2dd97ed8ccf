"""The client side of tests/e2e/dnsresponder.py, for test drivers (split out of it;
dnsresponder.py re-exports every name here): build_query() and parse_message(), exchange() (one
raw message over UDP or TCP), query() (the A and AAAA answers) and read_log() (the server's query
log). Python standard library only.
"""

import json
import random
import socket
import struct
import time

from dnsresponder_wire import (CLASS_IN, F_AA, F_QR, F_RA, F_RD, F_TC, QTYPES, T_A, T_AAAA,
                               T_CNAME, T_OPT, Malformed, _recv_exact, encode_name, read_name,
                               skip_rr)
from dnsresponder_zone import _is_int

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
