#!/usr/bin/python3
"""HTTP adapter: urllib3, one PoolManager() with its default settings (retries included).

    /usr/bin/python3 http_urllib3.py --target NAME:PORT --rate R --out FILE --stop-file FILE
        [--max-duration S] [--slow-file FILE] [--conns 1]

GET http://NAME:PORT/urllib3 on a fixed schedule. The pool's defaults are kept on purpose
(Retry(3) among them): we measure what an unconfigured urllib3 does. See README.md.
"""

import argparse
import json
import os
import time

import urllib3

CLIENT = "urllib3"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-duration", type=float, default=120.0)
    ap.add_argument("--slow-file")      # HTTP: the backend makes slow answers; ignored
    ap.add_argument("--conns", type=int, default=1)    # only 1 is supported
    args = ap.parse_args()
    if args.rate <= 0 or args.conns != 1:
        ap.error("--rate must be > 0 and --conns 1")

    url = "http://%s/%s" % (args.target, CLIENT)
    out = open(args.out, "a", buffering=1)

    def emit(rec):
        out.write(json.dumps(rec) + "\n")

    emit({"type": "meta", "t": time.time(), "pid": os.getpid(), "client": CLIENT,
          "version": urllib3.__version__})

    pm = urllib3.PoolManager()
    timeout = urllib3.Timeout(connect=2, read=5)

    interval = 1.0 / args.rate
    deadline = time.monotonic() + args.max_duration

    def wait_until(when):
        """Sleep until `when` (monotonic); False as soon as we must stop instead."""
        while True:
            now = time.monotonic()
            if os.path.exists(args.stop_file) or now >= deadline:
                return False
            if now >= when:
                return True
            time.sleep(min(0.05, when - now))

    seq = 0
    nxt = time.monotonic()
    while wait_until(nxt):
        rec = {"type": "req", "seq": seq, "t": time.time()}
        backend = port = error = None
        try:
            r = pm.request("GET", url, timeout=timeout)    # reads the body, releases the conn
            try:
                body = json.loads(r.data)
                backend, port = body.get("backend"), body.get("client_port")
            except ValueError:
                error = "bad body: %r" % r.data[:200]
            if r.status != 200:
                error = "HTTP %d" % r.status
        except Exception as e:
            error = "%s: %s" % (type(e).__name__, e)
        rec["t_end"] = time.time()
        rec["ok"] = error is None and backend is not None
        rec.update(backend=backend, client_port=port, conn=0, slow=False)
        if not rec["ok"]:
            rec["error"] = error or "no backend in body"
        emit(rec)
        seq += 1
        # Fixed schedule; after a late request the next one waits a full interval (no
        # catch-up burst, and never a request right on the heels of a slow answer).
        nxt += interval
        if nxt < time.monotonic():
            nxt = time.monotonic() + interval

    pm.clear()
    emit({"type": "end", "t": time.time()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
