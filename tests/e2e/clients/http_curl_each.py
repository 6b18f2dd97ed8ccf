#!/usr/bin/python3
"""HTTP adapter: the real curl binary, one invocation (one process) per request.

    /usr/bin/python3 http_curl_each.py --target NAME:PORT --rate R --out FILE --stop-file FILE
        [--max-duration S] [--tls CA_FILE]

Each request runs `curl http://NAME:PORT/curl-each` as a new process, as a shell script or a cron
job calling curl does: every request resolves the name afresh (a new process has no DNS cache)
and opens a fresh connection. The requests are paced by loop.py, one at a time (the next starts
after the previous curl exited). --connect-timeout 5 (it covers the name lookup) and
--max-time 8: a lookup that hangs for glibc's whole timeout ends as a failed request (exit 6,
or 28 if curl's own timeout comes first) and never stalls the run. With --tls: https:// and
--cacert CA_FILE. Every request record gets

    "lookup_s"   curl's %{time_namelookup}; when the lookup failed (curl reports 0 then), the
                 transfer's %{time_total}, which was all lookup
    "lookup_t"   when the lookup started: the end of the transfer minus %{time_total}, taken
                 when curl exits (a few milliseconds late at most)
    "exitcode"   curl's exit status (0, 6 could not resolve host, 28 timeout, ...)

--connection and --conns 1 are accepted (every request is a fresh connection anyway). See
README.md.
"""

import subprocess
import time

import loop

CLIENT = "curl-each"
MARK = "@@dnsaware-curl-each@@"
# After the body (no newline at its end): the fields, space-separated, errormsg last (it has
# spaces; empty when the transfer worked).
WRITE_OUT = ("\\n" + MARK + " %{http_code} %{remote_ip} %{local_port} %{time_namelookup}"
             " %{time_total} %{exitcode} %{errormsg}\\n")
# Could not resolve host; timed out (in the lookup when time_namelookup is 0).
RESOLVE_FAILED = (6, 28)


def main():
    args = loop.parse_args(__doc__.splitlines()[0], tls=True)
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    url = loop.http_url(args, CLIENT)
    cmd = ["curl", "-q", "-s", "--noproxy", "*", "--connect-timeout", "5", "--max-time", "8",
           "-w", WRITE_OUT]
    if args.tls:
        cmd += ["--cacert", args.tls]
    side = {}

    def request(seq, slow):
        side.clear()
        r = subprocess.run(cmd + ["%s?n=%d" % (url, seq)], stdout=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           preexec_fn=loop.die_with_parent, timeout=20)
        t_exit = time.time()
        body, sep, tail = r.stdout.decode("utf-8", "replace").rpartition("\n" + MARK + " ")
        if not sep:
            side["exitcode"] = r.returncode
            return {"backend": None, "client_port": None,
                    "error": "curl exit %d without its -w line" % r.returncode}
        f = tail.rstrip("\n").split(" ", 6)
        code, namelookup, total, exitcode = f[0], float(f[3]), float(f[4]), int(f[5])
        errormsg = f[6] if len(f) > 6 else ""
        failed_lookup = exitcode in RESOLVE_FAILED and namelookup == 0.0
        side.update(lookup_s=total if failed_lookup else namelookup, lookup_t=t_exit - total,
                    exitcode=exitcode)
        if code == "000":
            return {"backend": None, "client_port": None,
                    "error": "curl exit %d: %s" % (exitcode, errormsg)}
        return loop.http_answer(int(code), body)

    def annotate():
        return {"lookup_s": side.get("lookup_s"), "lookup_t": side.get("lookup_t"),
                "lookups": 1 if "lookup_s" in side else 0, "exitcode": side.get("exitcode")}

    return loop.run(args, CLIENT, version, request, annotate=annotate)


if __name__ == "__main__":
    raise SystemExit(main())
