"""Where the HTTP channels may connect, and how: never on to a redirect, and only to
public addresses unless the channel allows private ones.

The check runs when the socket is opened, on the addresses the connection then uses,
so a name that resolves to a public address when validated and to 10.0.0.1 a moment
later (DNS rebinding) is still caught."""

from __future__ import annotations

import ipaddress
import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from monitor_app.errors import DbmonError


class PrivateTargetRefused(DbmonError):
    """Permanent: the same name will keep resolving there. Not an OSError, so urllib3 and
    requests let it through unwrapped instead of retrying another address."""

    def __init__(self, host: str, addresses: list[str]):
        super().__init__(f"refused: {host} resolves to private or local address {', '.join(addresses)} "
                         "(set allow_private_targets: true on the channel to allow it)", permanent=True)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def public_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, all of them public, or PrivateTargetRefused."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    refused = [a for a in addresses if not is_public(a)]
    if refused:
        raise PrivateTargetRefused(host, refused)
    return addresses


class _PublicOnly:
    def _new_conn(self) -> socket.socket:
        try:
            addresses = public_addresses(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        last: OSError | None = None
        for address in addresses:  # connect to what was checked, not to a second lookup
            try:
                return urllib3_connection.create_connection((address, self.port), self.timeout,
                                                            source_address=self.source_address,
                                                            socket_options=self.socket_options)
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
            except OSError as exc:
                last = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")


class _PublicHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def session(allow_private: bool) -> requests.Session:
    s = requests.Session()
    if not allow_private:
        # A proxy from the environment would be the only address checked, and it is usually private.
        s.trust_env = False
        for scheme in ("http://", "https://"):
            s.mount(scheme, _PublicOnlyAdapter())
    return s
