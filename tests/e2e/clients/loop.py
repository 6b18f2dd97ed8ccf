"""What the python client adapters share: the contract's options, the records, and the pacing
loop (contract: README.md). An adapter supplies only its library's request; nothing here
retries, checks or resolves anything the library would not."""

import argparse
import ctypes
import json
import os
import signal
import time


def die_with_parent():
    """For subprocess's preexec_fn: PR_SET_PDEATHSIG, so a client the adapter runs (curl) never
    outlives it, even if the adapter is SIGKILLed."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def parse_args(description, many_connections=False, tls=False, extra=None):
    """The contract's options (--tls when tls); extra(ap), when given, adds the adapter's own."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--target", required=True, help="NAME:PORT")
    ap.add_argument("--rate", type=float, required=True, help="requests per second in total")
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-duration", type=float, default=120.0)
    ap.add_argument("--slow-file", help="make the next request slow when this file appears")
    ap.add_argument("--connection", choices=("keep-alive", "close"), default="keep-alive",
                    help="close: a fresh connection for every request")
    ap.add_argument("--back-to-back", action="store_true",
                    help="no pacing: the next request the instant an answer ends (--rate is "
                         "ignored); each record gets gap_s")
    ap.add_argument("--conns", type=int, default=1,
                    help="keep-alive connections" + ("" if many_connections else " (only 1)"))
    if tls:
        ap.add_argument("--tls", metavar="CA_FILE",
                        help="HTTPS, trusting the certificate authority in CA_FILE (PEM)")
    if extra is not None:
        extra(ap)
    args = ap.parse_args()
    host, sep, port = args.target.rpartition(":")
    if not sep or not host or not port.isdigit():
        ap.error("--target must be NAME:PORT")
    args.host, args.port = host.strip("[]"), int(port)
    if args.rate <= 0:
        ap.error("--rate must be positive")
    if args.conns < 1 or (args.conns != 1 and not many_connections):
        ap.error("--conns must be %s" % (">= 1" if many_connections else "1"))
    if tls and args.tls and not os.path.isfile(args.tls):
        ap.error("--tls: no such file: %s" % args.tls)
    return args


def http_url(args, client):
    """The URL an HTTP adapter asks for: http://NAME:PORT/<client>, https:// with --tls."""
    return "%s://%s/%s" % ("https" if getattr(args, "tls", None) else "http", args.target, client)


class Records:
    def __init__(self, path):
        self.out = open(path, "a", buffering=1)

    def emit(self, rec):
        self.out.write(json.dumps(rec) + "\n")


def take_slow_file(args):
    if not args.slow_file:
        return False
    try:
        os.unlink(args.slow_file)
        return True
    except FileNotFoundError:
        return False


def run(args, client, version, request, close=None, annotate=None):
    """Calls request(seq, slow) on a fixed schedule until told to stop. request returns a dict
    with backend and client_port (and conn, when there are several), or raises; an exception
    is a failed request and the loop goes on. After a late (slow) request the next one waits a
    full interval: no catch-up burst, and no request right on the heels of an answer.
    annotate(), when given, is called after every request, failed or not, and its dict is
    added to the request's record (what the adapter measured on the side, e.g. lookup times).
    With --back-to-back there is no schedule: request(seq + 1) is called the instant request(seq)
    returned (or raised), never retried, and each record after the first has gap_s, the time
    from the previous request's return to this one's call, as the program sees it."""
    records = Records(args.out)
    records.emit({"type": "meta", "t": time.time(), "pid": os.getpid(), "client": client,
                  "version": version, "target": args.target})
    stop = {"now": False}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: stop.update(now=True))
    interval = 1.0 / args.rate
    deadline = time.monotonic() + args.max_duration
    nxt = time.monotonic()
    seq = 0
    returned = None     # when the previous request() returned (--back-to-back)
    while True:
        now = time.monotonic()
        if stop["now"] or now >= deadline or os.path.exists(args.stop_file):
            break
        if now < nxt and not args.back_to_back:
            time.sleep(min(0.05, nxt - now))
            continue
        nxt += interval
        slow = take_slow_file(args)
        rec = {"type": "req", "seq": seq, "t": time.time(), "conn": 0, "slow": slow}
        if args.back_to_back and returned is not None:
            rec["gap_s"] = round(time.monotonic() - returned, 6)
        try:
            try:
                answer = request(seq, slow)
            finally:
                returned = time.monotonic()
            rec.update(answer)
            rec["ok"] = rec.get("backend") is not None and not rec.get("error")
            if not rec["ok"]:
                rec["error"] = rec.get("error") or "no backend in the answer"
        except Exception as e:
            rec.update(ok=False, backend=None, client_port=None,
                       error="%s: %s" % (type(e).__name__, " ".join(str(e).split())))
        if annotate is not None:
            rec.update(annotate())
        rec["t_end"] = time.time()
        records.emit(rec)
        seq += 1
        if nxt < time.monotonic():
            nxt = time.monotonic() + interval
    if close is not None:
        try:
            close()
        except Exception:
            pass
    records.emit({"type": "end", "t": time.time()})
    return 0


def http_answer(status, body):
    """The backend's JSON answer: {"backend", "client_port"} or an error."""
    try:
        data = json.loads(body)
    except ValueError:
        return {"backend": None, "client_port": None, "error": "bad body: %r" % body[:200]}
    out = {"backend": data.get("backend"), "client_port": data.get("client_port")}
    if status != 200:
        out["error"] = "HTTP %d" % status
    return out
