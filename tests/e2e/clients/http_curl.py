#!/usr/bin/python3
"""HTTP adapter: the real curl binary, run once with many URLs, so it reuses one connection.

    /usr/bin/python3 http_curl.py --target NAME:PORT --rate R --out FILE --stop-file FILE
        [--max-duration S] [--connection keep-alive|close] [--tls CA_FILE]

curl gets http://NAME:PORT/curl?n=[1-M] (a URL glob, M = enough for the whole run) and paces
the transfers itself with --rate (with --tls: https://, and --cacert CA_FILE). After each transfer it writes the body (the backend's JSON)
and then a marker line (-w). This wrapper reads that output as it arrives: t_end is the arrival
of the marker line, t = t_end - time_total. See README.md.
"""

import json
import math
import os
import select
import signal
import subprocess
import time

import loop

CLIENT = "curl"
MARK = "@@dnsaware-curl@@"
# The body has no newline at its end, hence the leading \n. Fields are space-separated;
# errormsg is last since it contains spaces (empty when the transfer worked).
WRITE_OUT = ("\\n" + MARK + " %{http_code} %{remote_ip} %{local_port} %{time_total}"
             " %{exitcode} %{errormsg}\\n")


def curl_rate(rate):
    """curl --rate only takes a whole number per unit: N/s, else N/m, else N/h."""
    for unit, per in (("s", 1), ("m", 60), ("h", 3600)):
        n = rate * per
        if abs(n - round(n)) < 1e-6 and round(n) >= 1:
            return "%d/%s" % (round(n), unit)
    return "%d/h" % max(1, round(rate * 3600))


def main():
    args = loop.parse_args(__doc__.splitlines()[0], tls=True)
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    # Enough URLs for the whole run (curl does not wait after the last one of the glob).
    count = math.ceil(args.rate * args.max_duration) + 10
    cmd = ["curl", "-q", "-s", "-N", "--noproxy", "*", "--connect-timeout", "2",
           "--max-time", "5", "--rate", curl_rate(args.rate), "-w", WRITE_OUT]
    if args.connection == "close":
        cmd += ["-H", "Connection: close"]
    if args.tls:
        cmd += ["--cacert", args.tls]
    cmd.append("%s?n=[1-%d]" % (loop.http_url(args, CLIENT), count))

    emit = loop.Records(args.out).emit
    emit({"type": "meta", "t": time.time(), "pid": os.getpid(), "client": CLIENT,
          "version": version, "target": args.target})

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    deadline = time.monotonic() + args.max_duration
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            preexec_fn=loop.die_with_parent)
    fd = proc.stdout.fileno()
    buf = b""
    body = []
    seq = 0

    def take_line(line):
        nonlocal seq
        text = line.decode("utf-8", "replace")
        if not text.startswith(MARK + " "):
            body.append(text)
            return
        t_end = time.time()
        f = text[len(MARK) + 1:].split(" ", 5)
        code, time_total, exitcode, errormsg = f[0], float(f[3]), f[4], f[5]
        backend = port = error = None
        try:
            b = json.loads("".join(body)) if code != "000" else {}
            backend, port = b.get("backend"), b.get("client_port")
        except ValueError:
            error = "bad body: %r" % "".join(body)[:200]
        if code != "200":
            error = "curl exit %s: %s" % (exitcode, errormsg) if code == "000" else "HTTP " + code
        del body[:]
        rec = {"type": "req", "seq": seq, "t": t_end - time_total, "t_end": t_end,
               "ok": error is None and backend is not None, "backend": backend,
               "client_port": port, "conn": 0, "slow": False}
        if not rec["ok"]:
            rec["error"] = error or "no backend in body"
        emit(rec)
        seq += 1

    try:
        while not stop and not os.path.exists(args.stop_file) and time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break                   # curl is done with every URL
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                take_line(line)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
    buf += proc.stdout.read()           # results that arrived before curl was stopped
    for line in buf.split(b"\n")[:-1]:
        take_line(line)
    emit({"type": "end", "t": time.time()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
