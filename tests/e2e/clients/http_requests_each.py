#!/usr/bin/python3
"""HTTP adapter: python requests.get(url) without a Session: a lookup and a connection per request.

    /usr/bin/python3 http_requests_each.py --target NAME:PORT --rate R --out FILE --stop-file FILE
        [--max-duration S] [--tls CA_FILE]

GET http://NAME:PORT/requests-each on a fixed schedule with the module-level requests.get, as a
script that never made a Session does: each call builds a Session and a connection pool of its
own, so urllib3 calls socket.getaddrinfo for every request and opens a fresh connection. Defaults
kept (no retries). socket.getaddrinfo is wrapped for timing only (same arguments, same result,
same exception): every request record gets

    "lookup_s"    seconds spent in getaddrinfo during the request (summed; null: no lookup)
    "lookup_t"    when the request's first getaddrinfo started (epoch seconds)
    "lookups"     how many getaddrinfo calls the request made (1 with requests 2.28)
    "gai_error"   the errno of a socket.gaierror it raised (-3 EAI_AGAIN, -2 EAI_NONAME), or null

--connection and --conns 1 are accepted (every request is a fresh connection anyway). See
README.md.
"""

import socket
import time

import loop


def main():
    args = loop.parse_args(__doc__.splitlines()[0], tls=True)
    import requests                   # a missing module exits non-zero before any record

    url = loop.http_url(args, "requests-each")
    real_getaddrinfo = socket.getaddrinfo
    lookup = {}

    def timed_getaddrinfo(*a, **kw):
        t_wall, t0 = time.time(), time.monotonic()
        try:
            return real_getaddrinfo(*a, **kw)
        except socket.gaierror as e:
            lookup["gai_error"] = e.errno
            raise
        finally:
            lookup.setdefault("lookup_t", t_wall)
            lookup["lookup_s"] = lookup.get("lookup_s", 0.0) + time.monotonic() - t0
            lookup["lookups"] = lookup.get("lookups", 0) + 1

    socket.getaddrinfo = timed_getaddrinfo   # urllib3 looks it up on the module at each call

    def request(seq, slow):
        lookup.clear()
        # requests.get has no trust_env switch; the matrix's environment has no proxy
        # variables (dnsmove.clean_env), and proxy_bypass_environment resolves nothing.
        r = requests.get(url, timeout=(2, 5), verify=args.tls or True)
        return loop.http_answer(r.status_code, r.content)

    def annotate():
        return {"lookup_s": round(lookup["lookup_s"], 6) if "lookup_s" in lookup else None,
                "lookup_t": lookup.get("lookup_t"), "lookups": lookup.get("lookups", 0),
                "gai_error": lookup.get("gai_error")}

    return loop.run(args, "requests-each", requests.__version__, request, annotate=annotate)


if __name__ == "__main__":
    raise SystemExit(main())
