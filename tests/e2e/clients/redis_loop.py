#!/usr/bin/python3
"""Client adapter: redis-py (run with /usr/bin/python3, Debian python3-redis).

One redis.Redis client with default pool and retry settings. Each request is CLIENT INFO:
backend = address part of laddr, client_port = port part of addr. A slow request (after the
--slow-file appeared) is one BLPOP on a key that never exists with a 1.5 s timeout; its backend
and client_port are read from the pooled connection's socket, so the request is one command, as
an application's would be (a second command sent right after the answer would be a new exchange
of its own).
Contract: tests/e2e/clients/README.md.
"""

import argparse
import json
import os
import signal
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="NAME:PORT")
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-duration", type=float, default=120.0)
    ap.add_argument("--slow-file")
    ap.add_argument("--conns", type=int, default=1, help="ignored (one client)")
    args = ap.parse_args()
    host, sep, port = args.target.rpartition(":")
    if not sep or not host or not port.isdigit():
        ap.error("--target must be NAME:PORT")
    args.host, args.port = host.strip("[]"), int(port)
    if args.rate <= 0:
        ap.error("--rate must be positive")
    return args


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def pooled_socket_addresses(r):
    """(server address, client port) of the connection the last command used."""
    conn = r.connection_pool._available_connections[-1]
    return conn._sock.getpeername()[0], conn._sock.getsockname()[1]


def main():
    args = parse_args()
    import redis                      # a missing module exits non-zero before any record

    out = open(args.out, "a", buffering=1)

    def emit(obj):
        out.write(json.dumps(obj) + "\n")

    version = "redis-py %s" % redis.__version__
    try:
        from redis.utils import HIREDIS_AVAILABLE
        version += " (hiredis parser)" if HIREDIS_AVAILABLE else " (python parser)"
    except ImportError:
        pass
    emit({"type": "meta", "t": time.time(), "pid": os.getpid(), "client": "redis-py",
          "version": version, "target": args.target})

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *a: stop.update(now=True))

    r = redis.Redis(host=args.host, port=args.port, socket_timeout=5, socket_connect_timeout=2)

    def stopping():
        return stop["now"] or os.path.exists(args.stop_file)

    interval = 1.0 / args.rate
    start = time.monotonic()
    deadline = start + args.max_duration
    nxt = start
    seq = 0
    while not stopping() and time.monotonic() < deadline:
        now = time.monotonic()
        if now < nxt:
            time.sleep(min(nxt - now, 0.05))
            continue
        nxt += interval
        slow = False
        if args.slow_file:
            try:
                os.unlink(args.slow_file)
                slow = True
            except FileNotFoundError:
                pass
        rec = {"type": "req", "seq": seq, "t": time.time(), "conn": 0, "slow": slow}
        seq += 1
        try:
            if slow:
                r.blpop("dnsaware:none", 1.5)
                rec["backend"], rec["client_port"] = pooled_socket_addresses(r)
            else:
                info = r.client_info()
                rec["backend"] = split_hostport(info["laddr"])[0]
                rec["client_port"] = split_hostport(info["addr"])[1]
            rec["ok"] = True
        except Exception as e:
            rec["ok"] = False
            rec["backend"] = None
            rec["client_port"] = None
            rec["error"] = "%s: %s" % (type(e).__name__, e)
        rec["t_end"] = time.time()
        emit(rec)
        # After a late request the next one waits a full interval (no catch-up burst, and
        # never a request right on the heels of a slow answer).
        if nxt < time.monotonic():
            nxt = time.monotonic() + interval
    try:
        r.close()
    except Exception:
        pass
    emit({"type": "end", "t": time.time()})
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
