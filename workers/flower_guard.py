"""Flower behind dbmon's own authentication, and read-only.

Flower's API can run any task by name (/api/task/async-apply, /api/task/send-task,
/api/task/apply) and shut down or reconfigure workers, which would bypass the task ledger,
dbmon's roles and its audit trail. Flower has no switch for that, so the guard sits in the
tornado application itself: every request is authenticated first, then only reads (GET,
HEAD) of paths other than task execution reach Flower's handlers.

Besides an API key and the basic-auth pairs, the dbmon pages' session cookie (`dbmon_session`)
opens Flower, so the "Task queues" link in the pages' navigation needs no second login: a
browser sends that cookie to Flower on the same host (cookies are not bound to a port). The
cookie is Flask's signed session; it is verified here with the same key, salt, key derivation,
digest and lifetime as the API, and its key id must still be a live key with the operator role,
so revoking the key locks its sessions out of Flower too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
from datetime import timedelta

import tornado.web
from flask.json.tag import TaggedJSONSerializer
from flower.app import Flower
from itsdangerous import BadSignature, URLSafeTimedSerializer

from monitor_app.access.api_keys import authenticate, principal_of

log = logging.getLogger("dbmon.flower")
NEEDED_ROLE = "operator"
READ_METHODS = ("GET", "HEAD")
# Refused even for GET, should Flower ever accept it there.
EXECUTION_PATHS = re.compile(r"^/api/(task/(apply|async-apply|send-task|abort|revoke|timeout|rate-limit)|worker/)")
HEALTHCHECK = "/healthcheck"
REALM = 'Basic realm="dbmon flower", charset="UTF-8"'
SESSION_COOKIE = "dbmon_session"
MAX_COOKIE = 4096


def page_session_serializer(secret: bytes) -> URLSafeTimedSerializer:
    """What Flask's SecureCookieSessionInterface signs the pages' session cookie with."""
    return URLSafeTimedSerializer(secret, salt="cookie-session", serializer=TaggedJSONSerializer(),
                                  signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1})


def _default_session_secret() -> bytes:
    from api.web.session_auth import session_key
    from monitor_app.config.settings import get_settings

    return session_key(get_settings())


class FlowerAccess:
    """Who may look at Flower: an operator/admin API key, a signed-in pages session of one, or one
    of the configured basic-auth pairs."""

    def __init__(self, store, basic_pairs: list[str], session_secret: bytes | None = None,
                 session_hours: float | None = None):
        self.store = store
        self.basic_pairs = [p.encode() for p in basic_pairs]
        self._session_secret = session_secret
        if session_hours is None:
            from api.web import SESSION_HOURS

            session_hours = SESSION_HOURS
        self.session_max_age = timedelta(hours=session_hours).total_seconds()

    def _session_key_id(self, cookie: str) -> int | None:
        if len(cookie) > MAX_COOKIE:
            return None
        if self._session_secret is None:
            self._session_secret = _default_session_secret()
        try:
            data = page_session_serializer(self._session_secret).loads(cookie, max_age=self.session_max_age)
        except (BadSignature, ValueError, TypeError):  # forged, expired, or not a session at all
            return None
        key_id = data.get("key_id") if isinstance(data, dict) else None
        return key_id if isinstance(key_id, int) and not isinstance(key_id, bool) else None

    def check(self, authorization: str | None, api_key: str | None, session_cookie: str | None = None) -> int:
        """200 when allowed, 401 when unauthenticated, 403 when the key's role is too weak."""
        if session_cookie and not authorization and not api_key:
            key_id = self._session_key_id(session_cookie)
            if key_id is not None:
                with self.store.session() as s:
                    who = principal_of(s, key_id)
                if who is not None:
                    return 200 if who.allows(NEEDED_ROLE) else 403
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


def _session_cookie(request) -> str | None:
    try:
        morsel = request.cookies.get(SESSION_COOKIE)
    except Exception:  # noqa: BLE001 - a malformed Cookie header is no session, not a crash
        return None
    return morsel.value if morsel is not None else None


def guarded_flower(access: FlowerAccess) -> type[Flower]:
    class GuardedFlower(Flower):
        def find_handler(self, request, **kwargs):
            if request.path == HEALTHCHECK and request.method in READ_METHODS:
                return super().find_handler(request, **kwargs)  # says "OK" and nothing else, for probes
            status = access.check(request.headers.get("Authorization"), request.headers.get("X-API-Key"),
                                  _session_cookie(request))
            if status == 401:
                return self._refuse(request, 401, "sign in to dbmon, or send an operator API key or a Flower basic-auth pair")
            if status == 403:
                return self._refuse(request, 403, f"Flower needs the {NEEDED_ROLE} role")
            if request.method not in READ_METHODS or EXECUTION_PATHS.match(request.path):
                log.warning("refused %s %s: Flower is read-only under dbmon", request.method, request.path)
                return self._refuse(request, 403, "Flower is read-only here: run scans through dbmon's API")
            return super().find_handler(request, **kwargs)

        def _refuse(self, request, status: int, message: str):
            return self.get_handler_delegate(request, _Refusal, {"status": status, "message": message})

    return GuardedFlower
