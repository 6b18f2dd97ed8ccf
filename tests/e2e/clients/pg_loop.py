#!/usr/bin/python3
"""Client adapter: psycopg2 over libpq (run with /usr/bin/python3, Debian python3-psycopg2).

One autocommit connection. Each request is SELECT host(inet_server_addr()), inet_client_port().
When a request fails with OperationalError or InterfaceError the failure is recorded, the
connection is closed and a new one is made before the next request (as a plain libpq
application does; the failed statement is not retried). A slow request (after the --slow-file
appeared) runs pg_sleep(1.5) in the same statement. Contract: tests/e2e/clients/README.md.
"""

import argparse
import json
import os
import signal
import sys
import time

QUERY = "SELECT host(inet_server_addr()), inet_client_port()"
SLOW_QUERY = "SELECT pg_sleep(1.5), host(inet_server_addr()), inet_client_port()"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="NAME:PORT")
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-duration", type=float, default=120.0)
    ap.add_argument("--slow-file")
    ap.add_argument("--conns", type=int, default=1, help="ignored (one connection)")
    args = ap.parse_args()
    host, sep, port = args.target.rpartition(":")
    if not sep or not host or not port.isdigit():
        ap.error("--target must be NAME:PORT")
    args.host, args.port = host.strip("[]"), int(port)
    if args.rate <= 0:
        ap.error("--rate must be positive")
    return args


def pg_version(v):
    """libpq version number (150001) as text (15.1)."""
    if v >= 100000:
        return "%d.%d" % (v // 10000, v % 10000)
    return "%d.%d.%d" % (v // 10000, v // 100 % 100, v % 100)


def main():
    args = parse_args()
    import psycopg2                   # a missing module exits non-zero before any record
    import psycopg2.extensions

    out = open(args.out, "a", buffering=1)

    def emit(obj):
        out.write(json.dumps(obj) + "\n")

    built = psycopg2.__libpq_version__
    runtime = psycopg2.extensions.libpq_version()
    emit({"type": "meta", "t": time.time(), "pid": os.getpid(), "client": "psycopg2",
          "version": "psycopg2 %s, libpq %s (built against %s)"
                     % (psycopg2.__version__, pg_version(runtime), pg_version(built)),
          "libpq_version": runtime, "libpq_build_version": built, "target": args.target})

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *a: stop.update(now=True))

    def stopping():
        return stop["now"] or os.path.exists(args.stop_file)

    conn = None
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
            if conn is None:
                conn = psycopg2.connect(host=args.host, port=args.port, user="postgres",
                                        dbname="postgres", connect_timeout=2)
                conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(SLOW_QUERY if slow else QUERY)
                row = cur.fetchone()
            rec["backend"], rec["client_port"] = row[-2], row[-1]
            rec["ok"] = True
        except Exception as e:
            rec["ok"] = False
            rec["backend"] = None
            rec["client_port"] = None
            rec["error"] = "%s: %s" % (type(e).__name__, " ".join(str(e).split()))
            if isinstance(e, (psycopg2.OperationalError, psycopg2.InterfaceError)) \
                    and conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
        rec["t_end"] = time.time()
        emit(rec)
        # After a late request the next one waits a full interval (no catch-up burst, and
        # never a request right on the heels of a slow answer).
        if nxt < time.monotonic():
            nxt = time.monotonic() + interval
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass
    emit({"type": "end", "t": time.time()})
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
