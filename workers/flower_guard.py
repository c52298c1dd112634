"""Flower behind dbmon's own authentication, and read-only.

Flower's API can run any task by name (/api/task/async-apply, /api/task/send-task,
/api/task/apply) and shut down or reconfigure workers, which would bypass the task ledger,
dbmon's roles and its audit trail. Flower has no switch for that, so the guard sits in the
tornado application itself: every request is authenticated first, then only reads (GET,
HEAD) of paths other than task execution reach Flower's handlers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re

import tornado.web
from flower.app import Flower

from monitor_app.access.api_keys import authenticate

log = logging.getLogger("dbmon.flower")
NEEDED_ROLE = "operator"
READ_METHODS = ("GET", "HEAD")
# Refused even for GET, should Flower ever accept it there.
EXECUTION_PATHS = re.compile(r"^/api/(task/(apply|async-apply|send-task|abort|revoke|timeout|rate-limit)|worker/)")
HEALTHCHECK = "/healthcheck"
REALM = 'Basic realm="dbmon flower", charset="UTF-8"'


class FlowerAccess:
    """Who may look at Flower: an operator/admin API key, or one of the configured basic-auth pairs."""

    def __init__(self, store, basic_pairs: list[str]):
        self.store = store
        self.basic_pairs = [p.encode() for p in basic_pairs]

    def check(self, authorization: str | None, api_key: str | None) -> int:
        """200 when allowed, 401 when unauthenticated, 403 when the key's role is too weak."""
        candidate_key = api_key
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "basic":
                return 401
            try:
                pair = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                return 401
            # Compare against every pair so the time taken says nothing about which one is close.
            if any([hmac.compare_digest(pair, known) for known in self.basic_pairs]):
                return 200
            candidate_key = candidate_key or pair.partition(b":")[2].decode("utf-8", "replace")
        if not candidate_key:
            return 401
        with self.store.session() as s:
            who = authenticate(s, candidate_key)
        if who is None:
            return 401
        return 200 if who.allows(NEEDED_ROLE) else 403


class _Refusal(tornado.web.RequestHandler):
    def initialize(self, status: int, message: str) -> None:
        self._status, self._message = status, message

    def check_xsrf_cookie(self) -> None:
        """Nothing to protect: this handler only refuses, and must say why."""

    def prepare(self) -> None:
        self.set_status(self._status)
        if self._status == 401:
            self.set_header("WWW-Authenticate", REALM)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": self._message}))


def guarded_flower(access: FlowerAccess) -> type[Flower]:
    class GuardedFlower(Flower):
        def find_handler(self, request, **kwargs):
            if request.path == HEALTHCHECK and request.method in READ_METHODS:
                return super().find_handler(request, **kwargs)  # says "OK" and nothing else, for probes
            status = access.check(request.headers.get("Authorization"), request.headers.get("X-API-Key"))
            if status == 401:
                return self._refuse(request, 401, "an operator API key or a Flower basic-auth pair is required")
            if status == 403:
                return self._refuse(request, 403, f"Flower needs the {NEEDED_ROLE} role")
            if request.method not in READ_METHODS or EXECUTION_PATHS.match(request.path):
                log.warning("refused %s %s: Flower is read-only under dbmon", request.method, request.path)
                return self._refuse(request, 403, "Flower is read-only here: run scans through dbmon's API")
            return super().find_handler(request, **kwargs)

        def _refuse(self, request, status: int, message: str):
            return self.get_handler_delegate(request, _Refusal, {"status": status, "message": message})

    return GuardedFlower
