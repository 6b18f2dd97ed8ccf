#!/usr/bin/python3
"""HTTP adapter: python requests, one requests.Session per keep-alive connection.

    /usr/bin/python3 http_requests.py --target NAME:PORT --rate R --out FILE --stop-file FILE
        [--max-duration S] [--conns N] [--connection keep-alive|close] [--tls CA_FILE]

GET http://NAME:PORT/requests on a fixed schedule; with --conns N, N sessions are used
round-robin (request i goes to session i % N; the rate is the total). Defaults kept (no
retries: requests' max_retries=0). With --tls, https:// and each session's verify=CA_FILE.
See README.md.
"""

import loop


def main():
    args = loop.parse_args(__doc__.splitlines()[0], many_connections=True, tls=True)
    import requests                   # a missing module exits non-zero before any record

    url = loop.http_url(args, "requests")
    headers = {"Connection": "close"} if args.connection == "close" else {}
    sessions = []
    for _ in range(args.conns):
        s = requests.Session()
        s.trust_env = False             # no proxies or netrc from the environment
        if args.tls:
            s.verify = args.tls             # the test CA (REQUESTS_CA_BUNDLE needs trust_env)
        sessions.append(s)

    def request(seq, slow):
        conn = seq % args.conns
        r = sessions[conn].get(url, timeout=(2, 5), headers=headers)
        return dict(loop.http_answer(r.status_code, r.content), conn=conn)

    def close():
        for s in sessions:
            s.close()

    return loop.run(args, "requests", requests.__version__, request, close)


if __name__ == "__main__":
    raise SystemExit(main())
