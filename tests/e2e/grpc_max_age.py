#!/usr/bin/python3
"""What gRPC's own connection recycling costs a python grpcio client: none of its calls fail.

    /usr/bin/python3 tests/e2e/grpc_max_age.py [SECONDS] [CALLS_PER_SECOND]

A server on 127.0.0.1:50999 with grpc.max_connection_age_ms=2000 (grace 1 s) closes every
connection after 2 s with an HTTP/2 GOAWAY; a sync client on one channel calls it at the given
rate (default 40 s at 3 calls/s). Prints the calls that succeeded and failed (by status) and how
many connections the server saw. The comparison for docs/compatibility.md: the shim's shutdown of
an idle connection (no GOAWAY) fails the next call when python grpcio has not read the EOF yet.
"""
import sys
import time
from concurrent import futures

import grpc


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 40.0
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    peers = set()

    def who(request, context):
        peers.add(context.peer())
        return b"ok"

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            if details.method != "/e2e.Echo/Who":
                return None
            return grpc.unary_unary_rpc_method_handler(who)

    server = grpc.server(futures.ThreadPoolExecutor(4),
                         options=[("grpc.max_connection_age_ms", 2000),
                                  ("grpc.max_connection_age_grace_ms", 1000)])
    server.add_generic_rpc_handlers((Handler(),))
    server.add_insecure_port("127.0.0.1:50999")
    server.start()
    channel = grpc.insecure_channel("127.0.0.1:50999")
    call = channel.unary_unary("/e2e.Echo/Who")
    ok, failed = 0, {}
    end = time.time() + seconds
    while time.time() < end:
        try:
            call(b"x", timeout=5)
            ok += 1
        except grpc.RpcError as e:
            failed[str(e.code())] = failed.get(str(e.code()), 0) + 1
        time.sleep(1 / rate)
    server.stop(0)
    print("%d calls ok, %d failed %s, %d connections" % (ok, sum(failed.values()), failed or "", len(peers)))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
