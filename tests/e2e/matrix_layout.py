"""The matrix's scene layout, shared by its modules (tests/e2e/matrix.py): the addresses, ports,
DNS listeners and timings every scenario and client is built on."""

import os

import dnsmove

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLIENT_DIR = os.path.join(HERE, "clients")

PROGRAM_DNS = "127.0.0.1"  # /etc/resolv.conf inside the namespace
SHIM_DNS = "127.0.0.3"     # DNSAWARE_NAMESERVERS of every shim
ADDRS = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"]
NGINX_LISTEN = {True: "127.0.0.20", False: "127.0.0.21"}
HTTP_PORT, REDIS_PORT, PG_PORT = 8080, 6379, 5432
TTL = 1
TTL_FLOOR = "200ms"
DOMAIN = "e2e.test"
SLOW_SECONDS = dnsmove.SLOW_ANSWER
