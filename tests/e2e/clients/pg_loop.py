#!/usr/bin/python3
"""Client adapter: psycopg2 over libpq (run with /usr/bin/python3, Debian python3-psycopg2).

One autocommit connection. Each request is SELECT host(inet_server_addr()), inet_client_port().
When a request fails with OperationalError or InterfaceError the failure is recorded, the
connection is closed and a new one is made before the next request (as a plain libpq
application does; the failed statement is not retried). A slow request (after the --slow-file
appeared) runs pg_sleep(1.5) in the same statement. Contract: README.md.
"""

import loop

QUERY = "SELECT host(inet_server_addr()), inet_client_port()"
SLOW_QUERY = "SELECT pg_sleep(1.5), host(inet_server_addr()), inet_client_port()"


def pg_version(v):
    """libpq version number (150001) as text (15.1)."""
    if v >= 100000:
        return "%d.%d" % (v // 10000, v % 10000)
    return "%d.%d.%d" % (v // 10000, v // 100 % 100, v % 100)


def main():
    args = loop.parse_args(__doc__.splitlines()[0])
    import psycopg2                   # a missing module exits non-zero before any record
    import psycopg2.extensions

    built = psycopg2.__libpq_version__
    runtime = psycopg2.extensions.libpq_version()
    version = "psycopg2 %s, libpq %s (built against %s)" % (
        psycopg2.__version__, pg_version(runtime), pg_version(built))
    session = {"conn": None}

    def close():
        if session["conn"] is not None:
            session["conn"].close()
        session["conn"] = None

    def request(seq, slow):
        try:
            if session["conn"] is None:
                session["conn"] = psycopg2.connect(host=args.host, port=args.port,
                                                   user="postgres", dbname="postgres",
                                                   connect_timeout=2)
                session["conn"].autocommit = True
            with session["conn"].cursor() as cur:
                cur.execute(SLOW_QUERY if slow else QUERY)
                row = cur.fetchone()
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            try:
                close()                 # reconnect before the next request, not now
            except Exception:
                session["conn"] = None
            raise
        return {"backend": row[-2], "client_port": row[-1]}

    return loop.run(args, "psycopg2", version, request, close)


if __name__ == "__main__":
    raise SystemExit(main())
