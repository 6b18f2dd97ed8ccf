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
GRPC_PORT = 50051           # tests/e2e/grpc_backend.py on every backend address
TLS_PORT = 8443            # the HTTP backends' port in a TLS scenario


class Net:
    """The addresses of one scenario's world: IPv4 on 127.0.0.0/8 (every scenario but the IPv6
    ones), or IPv6 on fd00::/8 addresses added to lo, where the DNS itself is reached over IPv6
    and the names have only AAAA records."""

    def __init__(self, family, program_dns, shim_dns, driver_src, addrs, nginx_listen, qtype):
        self.family = family
        self.program_dns = program_dns
        self.shim_dns = shim_dns
        self.driver_src = driver_src    # the driver's own DNS queries come from here
        self.addrs = addrs
        self.nginx_listen = nginx_listen
        self.qtype = qtype              # the record type the names have (and are counted by)

    def local(self):
        """Every address the scene listens on or sends from."""
        return ([self.program_dns, self.shim_dns, self.driver_src] + self.addrs
                + list(self.nginx_listen.values()))


NET4 = Net(4, PROGRAM_DNS, SHIM_DNS, dnsmove.DRIVER_SRC, ADDRS, NGINX_LISTEN, "A")
NET6 = Net(6, "fd00::1", "fd00::3", "fd00::2", ["fd00::10", "fd00::11", "fd00::12", "fd00::13"],
           {True: "fd00::20", False: "fd00::21"}, "AAAA")
TTL = 1
TTL_FLOOR = "200ms"
DOMAIN = "e2e.test"
SLOW_SECONDS = dnsmove.SLOW_ANSWER
