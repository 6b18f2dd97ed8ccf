#!/usr/bin/python3
"""gRPC adapter: python grpcio, unary calls over one grpc.insecure_channel("NAME:PORT").

    /usr/bin/python3 grpc_loop.py --target NAME:PORT --rate R --out FILE --stop-file FILE
        [--max-duration S] [--resolver default|native|ares] [--retry]

Calls /e2e.Echo/Who (tests/e2e/grpc_backend.py) on a fixed schedule, one call at a time, with a
5 s deadline, over one channel kept for the whole run: raw bytes both ways (no protobuf code),
the request {"client": ID, "host": NAME} as JSON, the answer the backend's JSON
{"backend", "client_ip", "client_port"}.

--resolver chooses gRPC's DNS resolver through GRPC_DNS_RESOLVER, set before grpc is imported:
native (getaddrinfo, in gRPC's own thread), ares (gRPC's c-ares client, which reads
/etc/resolv.conf and never calls getaddrinfo), default (the variable unset: the build's default,
c-ares for Debian's grpcio 1.51). The client id is grpc-<resolver>.

--retry adds a retry policy for UNAVAILABLE to the channel's service config (maxAttempts 3,
backoff 0.1 s doubling to 1 s) and turns retries on (grpc.enable_retries). Without it the channel
keeps gRPC's defaults, which retry only transparently (a call that never left the client).

A failed call is recorded with its status: "grpc_code" (e.g. "UNAVAILABLE"), "grpc_details", and
"error" = "CODE: details". The --connection, --slow-file and --conns options of the contract are
accepted and ignored (slow answers come from the backend, as for HTTP). See README.md.
"""

import json
import os

import loop

RESOLVERS = ("default", "native", "ares")
METHOD = "/e2e.Echo/Who"
RETRY_CONFIG = {
    "methodConfig": [{
        "name": [{"service": "e2e.Echo"}],
        "retryPolicy": {
            "maxAttempts": 3,
            "initialBackoff": "0.1s",
            "maxBackoff": "1s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
}


def options(ap):
    ap.add_argument("--resolver", choices=RESOLVERS, default="default",
                    help="gRPC's DNS resolver (GRPC_DNS_RESOLVER; default: leave it unset)")
    ap.add_argument("--retry", action="store_true",
                    help="service config with a retryPolicy for UNAVAILABLE")


def main():
    args = loop.parse_args(__doc__.splitlines()[0], extra=options)
    # gRPC reads GRPC_DNS_RESOLVER once, when the library initialises: set it before the import.
    if args.resolver == "default":
        os.environ.pop("GRPC_DNS_RESOLVER", None)
    else:
        os.environ["GRPC_DNS_RESOLVER"] = args.resolver
    import grpc                      # a missing module exits non-zero before any record

    client = "grpc-" + args.resolver + ("-retry" if args.retry else "")
    chan_opts = []
    if args.retry:
        client += "-retry"
        chan_opts += [("grpc.enable_retries", 1),
                      ("grpc.service_config", json.dumps(RETRY_CONFIG))]
    channel = grpc.insecure_channel(args.target, options=chan_opts)
    who = channel.unary_unary(METHOD)   # no (de)serializers: bytes in, bytes out
    payload = json.dumps({"client": client, "host": args.host}).encode()

    def request(seq, slow):
        try:
            answer = who(payload, timeout=5)
        except grpc.RpcError as e:
            code = e.code()
            name = code.name if code is not None else None
            details = " ".join(str(e.details() or "").split())
            return {"backend": None, "client_port": None, "grpc_code": name,
                    "grpc_details": details, "error": "%s: %s" % (name, details)}
        return loop.http_answer(200, answer)

    version = "grpcio %s, GRPC_DNS_RESOLVER=%s%s" % (
        grpc.__version__, os.environ.get("GRPC_DNS_RESOLVER", "(unset)"),
        ", retry UNAVAILABLE x3" if args.retry else "")
    return loop.run(args, client, version, request, channel.close)


if __name__ == "__main__":
    raise SystemExit(main())
