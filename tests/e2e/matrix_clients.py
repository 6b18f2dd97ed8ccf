"""The matrix's clients (tests/e2e/matrix.py): each real program or library, how its adapter is
started (tests/e2e/clients/), and what the matrix knows about it beforehand: the failures it is
allowed per reconnect, and the clients a sanitized build leaves out."""

import os

from dnsmove import PYTHON
from matrix_layout import CLIENT_DIR, DOMAIN, HTTP_PORT, PG_PORT, REDIS_PORT


class Client:
    def __init__(self, cid, label, proto, argv, steering=False, conns=1, rate=None, tls=None):
        self.cid = cid
        self.label = label          # for the report
        self.proto = proto          # http | redis | pg | nginx
        self.argv = argv            # adapter command, without the contract's options
        self.steering = steering    # keeps the address itself: follows by connect steering
        self.conns = conns
        self.rate = rate            # overrides the scenario's rate (requests/s)
        # How it trusts the TLS scenarios' test CA (matrix_tls.trust): ca-file (--tls CA_FILE
        # is enough), jvm (a keytool trust store too), node (NODE_EXTRA_CA_CERTS too); None:
        # its adapter has no --tls.
        self.tls = tls

    def port(self):
        return {"http": HTTP_PORT, "nginx": HTTP_PORT, "redis": REDIS_PORT,
                "pg": PG_PORT}[self.proto]


def _py(script, *extra):
    return [PYTHON, os.path.join(CLIENT_DIR, script)] + list(extra)


CLIENTS = [
    Client("curl", "curl, one invocation with many URLs", "http", _py("http_curl.py"),
           steering=True, tls="ca-file"),
    Client("requests", "python requests.Session", "http", _py("http_requests.py"),
           tls="ca-file"),
    Client("urllib3", "python urllib3.PoolManager", "http", _py("http_urllib3.py")),
    Client("java", "Java 17 HttpURLConnection (java File.java)", "http",
           ["java", os.path.join(CLIENT_DIR, "HttpLoop.java")], steering=True, tls="jvm"),
    Client("java-forever", "Java 17, InetAddress cache forever (-Dsun.net.inetaddr.ttl=-1)",
           "http", ["java", "-Dsun.net.inetaddr.ttl=-1", os.path.join(CLIENT_DIR, "HttpLoop.java")],
           steering=True, tls="jvm"),
    Client("node", "Node.js http.Agent({keepAlive: true})", "http",
           ["node", os.path.join(CLIENT_DIR, "http_node.js")], tls="node"),
    Client("redis", "redis-py against redis-server", "redis", _py("redis_loop.py")),
    Client("postgres", "libpq (psycopg2), one session", "pg", _py("pg_loop.py")),
    Client("nginx", "nginx reverse proxy, upstream keepalive", "nginx",
           _py("http_requests.py"), steering=True),
]
MANY = Client("requests-200", "python requests, 200 keep-alive connections", "http",
              _py("http_requests.py"), conns=200)
ALL_CLIENTS = {c.cid: c for c in CLIENTS + [MANY]}

# Clients known to fail a request when the shim shuts their idle connection: they neither check
# a pooled connection before reusing it nor retry a request that was never sent. Each entry is
# the number of failed requests allowed per reconnect, and why (docs/compatibility.md).
FAILS_PER_RECONNECT = {
    "postgres": (1, "libpq sends a query on a connection the server (or the shim) has closed "
                    "and reports 'server closed the connection unexpectedly'; the application "
                    "reconnects only after that error. A server-side idle timeout costs the "
                    "same one failed query."),
}


def instance_name(client, shim):
    return "%s.%s" % (client.cid, DOMAIN) if shim else "%s.ctl.%s" % (client.cid, DOMAIN)


# Clients that cannot run with a sanitizer's runtime preloaded (meson sets DNSAWARE_TEST_SANITIZER
# to the build's b_sanitize in a sanitized build, docs/testing.md#sanitizers). They are left out of
# such a run, each with a SKIP line saying why; a scenario left with none exits 77 (skipped).
SANITIZER_UNSUPPORTED = {
    "curl": "curl (7.88, Debian 12) hangs at start with the ASan or TSan runtime preloaded, shim "
            "or no shim: its second setlocale() waits for ever on glibc's locale lock",
}


def sanitizer_skips(clients):
    """The clients to run under the build's sanitizer, and (client, reason) for the others."""
    sanitizer = os.environ.get("DNSAWARE_TEST_SANITIZER", "none")
    if sanitizer in ("", "none"):
        return clients, []
    kept = [c for c in clients if c not in SANITIZER_UNSUPPORTED]
    return kept, [(c, SANITIZER_UNSUPPORTED[c]) for c in clients if c in SANITIZER_UNSUPPORTED]


