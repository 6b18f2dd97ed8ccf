"""The matrix's clients (tests/e2e/matrix.py): each real program or library, how its adapter is
started (tests/e2e/clients/), and what the matrix knows about it beforehand: the failures it is
allowed per reconnect, and the clients a sanitized build leaves out."""

import os

from dnsmove import PYTHON
from matrix_layout import CLIENT_DIR, DOMAIN, GRPC_PORT, HTTP_PORT, PG_PORT, REDIS_PORT, REPO


class Client:
    def __init__(self, cid, label, proto, argv, steering=False, conns=1, rate=None, tls=None,
                 learns=None, needs=(), shim_env=None, control=True):
        self.cid = cid
        self.label = label          # for the report
        self.proto = proto          # http | redis | pg | nginx | grpc
        self.argv = argv            # adapter command, without the contract's options
        self.steering = steering    # keeps the address itself: follows by connect steering
        self.conns = conns
        self.rate = rate            # overrides the scenario's rate (requests/s)
        # How it trusts the TLS scenarios' test CA (matrix_tls.trust): ca-file (--tls CA_FILE
        # is enough), jvm (a keytool trust store too), node (NODE_EXTRA_CA_CERTS too); None:
        # its adapter has no --tls.
        self.tls = tls
        # How the shim must have learned the client's name: "getaddrinfo" or "dns" (the DNS
        # the program exchanged itself, design.md); the judge asks the stats file's
        # dnsaware_names_learned_total{source=...} for it. None: not checked.
        self.learns = learns
        # What must exist for it to run: program names (PATH or /usr/sbin), absolute paths,
        # or "python3:MODULE" (importable by PYTHON). matrix.py's prerequisites check them.
        self.needs = list(needs)
        # Settings of this client's shim run on top of the scenario's (a variant of another
        # client, e.g. the cache off where the scenario turns it on).
        self.shim_env = dict(shim_env or {})
        # Whether it gets a control run in a scenario with controls (a variant does not: the
        # client it varies has one).
        self.control = control

    def port(self):
        return {"http": HTTP_PORT, "nginx": HTTP_PORT, "redis": REDIS_PORT,
                "pg": PG_PORT, "grpc": GRPC_PORT}[self.proto]


def _py(script, *extra):
    return [PYTHON, os.path.join(CLIENT_DIR, script)] + list(extra)


# The c-ares adapter is built (tests/e2e/clients/meson.build); meson names it in the tests'
# environment, and a build tree beside the sources serves a run by hand.
HTTP_CARES = (os.environ.get("DNSAWARE_TEST_HTTP_CARES")
              or os.path.join(REPO, "build", "tests", "e2e", "clients", "http_cares"))


CLIENTS = [
    Client("curl", "curl, one invocation with many URLs", "http", _py("http_curl.py"),
           steering=True, tls="ca-file", needs=["curl"]),
    Client("requests", "python requests.Session", "http", _py("http_requests.py"),
           tls="ca-file"),
    Client("urllib3", "python urllib3.PoolManager", "http", _py("http_urllib3.py")),
    Client("java", "Java 17 HttpURLConnection (java File.java)", "http",
           ["java", os.path.join(CLIENT_DIR, "HttpLoop.java")], steering=True, tls="jvm",
           needs=["java"]),
    Client("java-forever", "Java 17, InetAddress cache forever (-Dsun.net.inetaddr.ttl=-1)",
           "http", ["java", "-Dsun.net.inetaddr.ttl=-1", os.path.join(CLIENT_DIR, "HttpLoop.java")],
           steering=True, tls="jvm", needs=["java"]),
    Client("node", "Node.js http.Agent({keepAlive: true})", "http",
           ["node", os.path.join(CLIENT_DIR, "http_node.js")], tls="node", needs=["node"]),
    Client("redis", "redis-py against redis-server", "redis", _py("redis_loop.py"),
           needs=["redis-server"]),
    Client("postgres", "libpq (psycopg2), one session", "pg", _py("pg_loop.py"),
           needs=["runuser"]),
    Client("nginx", "nginx reverse proxy, upstream keepalive", "nginx",
           _py("http_requests.py"), steering=True, needs=["nginx"]),
]
MANY = Client("requests-200", "python requests, 200 keep-alive connections", "http",
              _py("http_requests.py"), conns=200)

# Programs that resolve with their own DNS client (the shim learns their names from the answers
# they read on port-53 sockets), and PHP, whose curl extension is loaded with RTLD_DEEPBIND.
# Not among the default CLIENTS: they run in the scenarios that name them (move-own-dns).
OWN_DNS = [
    Client("grpc-native", "python grpcio 1.51, one channel, GRPC_DNS_RESOLVER=native "
           "(getaddrinfo)", "grpc", _py("grpc_loop.py", "--resolver", "native"),
           steering=True, learns="getaddrinfo", needs=["python3:grpc"]),
    Client("grpc-ares", "python grpcio 1.51, one channel, GRPC_DNS_RESOLVER=ares (its own "
           "c-ares client)", "grpc", _py("grpc_loop.py", "--resolver", "ares"),
           steering=True, learns="dns", needs=["python3:grpc"]),
    Client("grpc-default", "python grpcio 1.51, one channel, GRPC_DNS_RESOLVER unset "
           "(c-ares in Debian's build)", "grpc", _py("grpc_loop.py", "--resolver", "default"),
           steering=True, learns="dns", needs=["python3:grpc"]),
    # The remedy docs/compatibility.md gives for the failed call above: a retry policy.
    Client("grpc-ares-retry", "python grpcio 1.51, GRPC_DNS_RESOLVER=ares, a retryPolicy for "
           "UNAVAILABLE in the service config", "grpc",
           _py("grpc_loop.py", "--resolver", "ares", "--retry"),
           steering=True, learns="dns", needs=["python3:grpc"]),
    Client("cares", "C, c-ares ares_getaddrinfo, HTTP/1.1 keep-alive", "http", [HTTP_CARES],
           learns="dns", needs=[HTTP_CARES]),
    Client("node-resolve4", "Node.js http.Agent({keepAlive: true}), lookup by dns.resolve4",
           "http", ["node", os.path.join(CLIENT_DIR, "http_node.js"), "--lookup", "resolve4"],
           learns="dns", needs=["node"]),
    Client("php", "PHP 8.2 php-curl, one handle reused (curl.so loaded with RTLD_DEEPBIND)",
           "http", ["php", os.path.join(CLIENT_DIR, "http_php.php")], steering=True,
           learns="getaddrinfo", needs=["php"]),
]
# Clients that resolve the name for every request and open a fresh connection each time: the
# resolver's bad days scenarios (dns-blackhole, ...; matrix_baddays.py). Each request record has
# the lookup's time (lookup_s, lookup_t). The -nocache variants run beside them in dns-cache,
# under the shim with DNSAWARE_CACHE=0 where the scenario sets 1.
PER_REQUEST = [
    Client("requests-each", "python requests.get(url), no Session (a lookup and a connection "
           "per request)", "http", _py("http_requests_each.py"), tls="ca-file"),
    Client("curl-each", "curl, one invocation (one process) per request", "http",
           _py("http_curl_each.py"), tls="ca-file", needs=["curl"]),
]
PER_REQUEST_NOCACHE = [
    Client(c.cid + "-nocache", c.label + ", DNSAWARE_CACHE=0", c.proto, c.argv, tls=c.tls,
           needs=c.needs, shim_env={"DNSAWARE_CACHE": "0"}, control=False)
    for c in PER_REQUEST]
ALL_CLIENTS = {c.cid: c for c in CLIENTS + [MANY] + OWN_DNS + PER_REQUEST + PER_REQUEST_NOCACHE}

# Clients known to fail a request when the shim shuts their idle connection: they neither check
# a pooled connection before reusing it nor retry a request that was never sent. Each entry is
# the number of failed requests allowed per reconnect, and why (docs/compatibility.md).
FAILS_PER_RECONNECT = {
    "postgres": (1, "libpq sends a query on a connection the server (or the shim) has closed "
                    "and reports 'server closed the connection unexpectedly'; the application "
                    "reconnects only after that error. A server-side idle timeout costs the "
                    "same one failed query."),
}
# python grpcio (sync stubs) reads the channel's socket only while a call is in flight: the EOF
# of an idle connection the shim shut down is not seen before the next call is written to it,
# which then fails with UNAVAILABLE "Broken pipe" (not retried without a retryPolicy); the
# channel reconnects for the call after. Whether the next call finds it so depends on timing:
# 3 of 3 moves in one adapter_trial.py run, 0 of 4 in two others, every move in the matrix.
# With grpc_loop.py --retry (retryPolicy for UNAVAILABLE) none failed in 3 of 3 such moves: the
# call after each shutdown took 0.1 s, its retry's backoff.
_GRPC_FAIL = (1, "python grpcio reads the connection only while a call is in flight, so the "
                 "call after the shim's shutdown of an idle connection may be written to it "
                 "and fail with UNAVAILABLE 'Broken pipe' (no retryPolicy); the channel "
                 "reconnects for the next call. A retryPolicy for UNAVAILABLE loses nothing.")
FAILS_PER_RECONNECT.update({c: _GRPC_FAIL for c in ("grpc-native", "grpc-ares", "grpc-default")})


def instance_name(client, shim):
    return "%s.%s" % (client.cid, DOMAIN) if shim else "%s.ctl.%s" % (client.cid, DOMAIN)


# Clients that cannot run with a sanitizer's runtime preloaded (meson sets DNSAWARE_TEST_SANITIZER
# to the build's b_sanitize in a sanitized build, docs/testing.md#sanitizers). They are left out of
# such a run, each with a SKIP line saying why; a scenario left with none exits 77 (skipped).
SANITIZER_UNSUPPORTED = {
    "curl": "curl (7.88, Debian 12) hangs at start with the ASan or TSan runtime preloaded, shim "
            "or no shim: its second setlocale() waits for ever on glibc's locale lock",
    "php": "PHP loads its extensions with dlopen(RTLD_DEEPBIND), which the sanitizer runtimes "
           "refuse (google/sanitizers#611): 'You are trying to dlopen a .../opcache.so shared "
           "library with RTLD_DEEPBIND flag which is incompatible with sanitizer runtime'",
}


for _c in ("curl-each", "curl-each-nocache"):
    SANITIZER_UNSUPPORTED[_c] = SANITIZER_UNSUPPORTED["curl"]


def sanitizer_skips(clients):
    """The clients to run under the build's sanitizer, and (client, reason) for the others."""
    sanitizer = os.environ.get("DNSAWARE_TEST_SANITIZER", "none")
    if sanitizer in ("", "none"):
        return clients, []
    kept = [c for c in clients if c not in SANITIZER_UNSUPPORTED]
    return kept, [(c, SANITIZER_UNSUPPORTED[c]) for c in clients if c in SANITIZER_UNSUPPORTED]


