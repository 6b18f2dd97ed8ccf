#!/usr/bin/python3
"""gRPC backend for the end-to-end clients: answers with its own address, like the HTTP backend.

    /usr/bin/python3 grpc_backend.py --addr ADDR [--addr ADDR ...] --port PORT [--log FILE]

One grpc.server per --addr (plaintext HTTP/2, bound to exactly ADDR:PORT), in one process, each
with a generic handler (no protobuf code generation; requests and answers are raw bytes):

    /e2e.Echo/Who   request: anything (the adapters send {"client": ID, "host": NAME} as JSON)
                    answer:  {"backend": ADDR, "client_ip": ..., "client_port": ...} as JSON

Any other method gets UNIMPLEMENTED. The address in the answer is the one of the server that
took the call, so one process can serve every address of a scene. Slow answers work as in the
HTTP backend (tests/e2e/dnsmove.py): if the file `slow.<host>` exists in the working directory,
where <host> is the request's "host", the call that unlinks it waits 1.5 s before answering.

Prints "ready" on stdout once every address is bound; exits 0 on SIGTERM/SIGINT, 2 if it cannot
start (grpc missing, an address cannot be bound). --log: one JSON line per call, appended
({"t", "event": "request", "backend", "client_ip", "client_port", "method"}); python's grpc has
no hook for connections, so there are no connect/close events.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

SLOW_ANSWER = 1.5     # seconds, as tests/e2e/dnsmove.py's SLOW_ANSWER
METHOD = "/e2e.Echo/Who"


def parse_peer(peer):
    """grpc's peer string ("ipv4:127.0.0.1:40122", "ipv6:[::1]:40122") -> (ip, port)."""
    _, _, hostport = peer.partition(":")
    host, _, port = hostport.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return peer, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", action="append", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log")
    ap.add_argument("--workers", type=int, default=4, help="threads per address")
    args = ap.parse_args()
    try:
        import grpc
        from concurrent import futures
    except ImportError as e:
        print("grpc_backend.py: %s (install python3-grpcio)" % e, file=sys.stderr)
        return 2

    lock = threading.Lock()
    out = open(args.log, "a", buffering=1) if args.log else None

    def record(event, addr, ip, port, method):
        if out is None:
            return
        line = json.dumps({"t": time.time(), "event": event, "backend": addr,
                           "client_ip": ip, "client_port": port, "method": method})
        with lock:
            out.write(line + "\n")

    def who_for(addr):
        def who(request, context):
            ip, port = parse_peer(context.peer())
            record("request", addr, ip, port, METHOD)
            try:
                host = str(json.loads(request).get("host") or "").lower()
            except (ValueError, AttributeError):
                host = ""
            if host and "/" not in host:
                try:
                    os.unlink("slow." + host)
                    record("slow", addr, ip, port, METHOD)
                    time.sleep(SLOW_ANSWER)
                except FileNotFoundError:
                    pass
            return json.dumps({"backend": addr, "client_ip": ip, "client_port": port}).encode()
        return who

    class Handler(grpc.GenericRpcHandler):
        def __init__(self, addr):
            self.who = grpc.unary_unary_rpc_method_handler(who_for(addr))

        def service(self, details):
            return self.who if details.method == METHOD else None

    servers = []
    for addr in args.addr:
        # so_reuseport off: a second backend on the same address must fail, not share the port.
        srv = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                          handlers=[Handler(addr)], options=[("grpc.so_reuseport", 0)])
        bind = "[%s]:%d" % (addr, args.port) if ":" in addr else "%s:%d" % (addr, args.port)
        try:
            bound = srv.add_insecure_port(bind)
        except RuntimeError as e:        # newer grpc raises; 1.51 returns 0
            bound, err = 0, e
        else:
            err = "add_insecure_port returned 0"
        if bound != args.port:
            print("grpc_backend.py: cannot listen on %s: %s" % (bind, err), file=sys.stderr)
            return 2
        srv.start()
        servers.append(srv)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: done.set())
    print("ready", flush=True)
    while not done.wait(0.5):
        pass
    for srv in servers:
        srv.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
