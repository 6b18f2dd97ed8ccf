#!/usr/bin/python3
"""Client adapter: redis-py (run with /usr/bin/python3, Debian python3-redis).

    /usr/bin/python3 redis_loop.py --target NAME:PORT --rate R --out FILE --stop-file FILE
        [--max-duration S] [--slow-file FILE]

One redis.Redis client with default pool and retry settings. Each request is CLIENT INFO:
backend = address part of laddr, client_port = port part of addr. A slow request (after the
--slow-file appeared) is one BLPOP on a key that never exists with a 1.5 s timeout; its backend
and client_port are read from the pooled connection's socket, so the request is one command, as
an application's would be (a second command sent right after the answer would be a new exchange
of its own). Contract: README.md.
"""

import loop


def split_hostport(s):
    """CLIENT INFO's addr and laddr: HOST:PORT, or [HOST]:PORT for IPv6."""
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def pooled_socket_addresses(r):
    """(server address, client port) of the connection the last command used."""
    conn = r.connection_pool._available_connections[-1]
    return conn._sock.getpeername()[0], conn._sock.getsockname()[1]


def main():
    args = loop.parse_args(__doc__.splitlines()[0])
    import redis                      # a missing module exits non-zero before any record

    version = "redis-py %s" % redis.__version__
    try:
        from redis.utils import HIREDIS_AVAILABLE
        version += " (hiredis parser)" if HIREDIS_AVAILABLE else " (python parser)"
    except ImportError:
        pass
    r = redis.Redis(host=args.host, port=args.port, socket_timeout=5, socket_connect_timeout=2)

    def request(seq, slow):
        if slow:
            r.blpop("dnsaware:none", 1.5)
            backend, port = pooled_socket_addresses(r)
        else:
            info = r.client_info()
            backend, port = split_hostport(info["laddr"])[0], split_hostport(info["addr"])[1]
        return {"backend": backend, "client_port": port}

    return loop.run(args, "redis-py", version, request, r.close)


if __name__ == "__main__":
    raise SystemExit(main())
