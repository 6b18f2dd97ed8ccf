#!/usr/bin/python3
"""HTTP adapter: urllib3, one PoolManager() with its default settings (retries included).

    /usr/bin/python3 http_urllib3.py --target NAME:PORT --rate R --out FILE --stop-file FILE
        [--max-duration S] [--connection keep-alive|close]

GET http://NAME:PORT/urllib3 on a fixed schedule. The pool's defaults are kept on purpose
(Retry(3) among them): we measure what an unconfigured urllib3 does. See README.md.
"""

import loop


def main():
    args = loop.parse_args(__doc__.splitlines()[0])
    import urllib3                    # a missing module exits non-zero before any record

    url = "http://%s/urllib3" % args.target
    pm = urllib3.PoolManager()
    timeout = urllib3.Timeout(connect=2, read=5)
    headers = {"Connection": "close"} if args.connection == "close" else {}

    def request(seq, slow):
        r = pm.request("GET", url, timeout=timeout, headers=headers)  # reads the body
        return loop.http_answer(r.status, r.data)

    return loop.run(args, "urllib3", urllib3.__version__, request, pm.clear)


if __name__ == "__main__":
    raise SystemExit(main())
