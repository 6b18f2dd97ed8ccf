"""The set-up of bench_proxy.py (split out of tests/bench/bench_proxy.py, which re-exports every
name here): the paths (and tests/e2e on sys.path, for the modules of the harness it reuses), the
names, addresses and ports of the scene, the programs, the budget, the variants and mechanisms,
the full and smoke parameters, and the nginx and HAProxy configuration templates.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
E2E = os.path.join(REPO, "tests", "e2e")
sys.path.insert(0, E2E)
import services  # noqa: E402  (nginx helpers)

NAME = "backend.bench.test"
OLD, NEW = "127.0.0.10", "127.0.0.11"
PORT = 8080
PROGRAM_DNS, SHIM_DNS, HAPROXY_DNS = "127.0.0.1", "127.0.0.3", "127.0.0.4"
PROXY = {"a": "127.0.0.20", "b": "127.0.0.21", "c": "127.0.0.22"}
HAPROXY_ADDR = "127.0.0.30"
TTL_FLOOR = "1s"
BUDGET_PCT = 2.0
WRK = "/usr/bin/wrk"
HAPROXY = "/usr/sbin/haproxy"
NGINX = services.NGINX
EXIT_FAIL, EXIT_HARNESS = 1, 2

VARIANTS = {
    "a": "nginx, no shim",
    "b": "nginx + libdnsaware",
    "c": "nginx -> HAProxy sidecar",
}
MECHANISMS = {"shim": "nginx + libdnsaware", "haproxy": "nginx -> HAProxy sidecar"}

FULL = {
    "wrk_threads": 2, "wrk_conns": 32, "wrk_seconds": 10, "warmup_seconds": 2, "rounds": 3,
    "ttls": [1, 5], "conns": [1, 100, 1000], "react_warmup": 2.0, "window_extra": 5.0,
    "react_trials": 3, "instr_requests": [500, 2500],
}
SMOKE = {
    "wrk_threads": 2, "wrk_conns": 8, "wrk_seconds": 1, "warmup_seconds": 0, "rounds": 1,
    "ttls": [1], "conns": [8], "react_warmup": 1.0, "window_extra": 3.0, "react_trials": 1,
    "instr_requests": [20, 60],
}


# --------------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------------

def _temps(prefix):
    temp = os.path.join(prefix, "temp")
    os.makedirs(temp, exist_ok=True)
    built = services._nginx_modules()
    lines = ["client_body_temp_path %s/body;" % temp, "proxy_temp_path %s/proxy;" % temp]
    for mod in ("fastcgi", "uwsgi", "scgi"):
        if "--without-http_%s_module" % mod not in built:
            lines.append("%s_temp_path %s/%s;" % (mod, temp, mod))
    return "\n    ".join(lines)


NGINX_MAIN = """\
daemon off;
master_process on;
worker_processes %(workers)d;
worker_rlimit_nofile 16384;
user root;
pid %(prefix)s/nginx.pid;
error_log %(errlog)s %(loglevel)s;
lock_file %(prefix)s/nginx.lock;

events {
    worker_connections 8192;
}

http {
    %(temps)s
    keepalive_requests 1000000;
    keepalive_timeout 300s;
%(body)s
}
"""

BACKEND_BODY = """\
    %(access)s
    server {
        listen %(listen)s backlog=4096;
        default_type text/plain;
        location / {
            return 200 "ok";
        }
    }
"""

PROXY_BODY = """\
    access_log off;
    upstream backend {
        server %(upstream)s;
        keepalive %(keepalive)d;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen %(listen)s backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
"""

HAPROXY_CFG = """\
global
    maxconn 8000
    pidfile %(prefix)s/haproxy.pid

defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s

resolvers dns
    nameserver ns1 %(dns)s:53
    accepted_payload_size 1232
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 1s

frontend fe
    bind %(listen)s
    maxconn 8000
    default_backend be

backend be
%(extra)s    server s1 %(name)s:%(port)d resolvers dns init-addr none resolve-prefer ipv4
"""
