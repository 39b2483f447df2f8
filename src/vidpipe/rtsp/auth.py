"""RTSP authentication: Basic and Digest (MD5, RFC 7616 style, qop=auth or none)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))')


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


class Authenticator:
    def __init__(self, user: str, password: str, method: str = "digest", realm: str = "vidpipe"):
        if method not in ("basic", "digest"):
            raise ValueError(f"auth method '{method}' not supported; use basic or digest")
        self.user, self.password, self.method, self.realm = user, password, method, realm
        self._secret = os.urandom(16)

    def _nonce(self) -> str:
        ts = str(int(time.time()))
        mac = hmac.new(self._secret, ts.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{ts}.{mac}"

    def _nonce_ok(self, nonce: str, max_age: float = 300) -> bool:
        ts, _, mac = nonce.partition(".")
        if not ts.isdigit():
            return False
        good = hmac.new(self._secret, ts.encode(), hashlib.sha256).hexdigest()[:16]
        return hmac.compare_digest(good, mac) and time.time() - int(ts) < max_age

    def challenge(self) -> str:
        if self.method == "basic":
            return f'Basic realm="{self.realm}"'
        return f'Digest realm="{self.realm}", nonce="{self._nonce()}", algorithm=MD5'

    def check(self, header: str | None, method: str, uri: str) -> bool:
        if not header:
            return False
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "basic" and self.method == "basic":
            try:
                user, _, pw = base64.b64decode(rest.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user, self.user) and hmac.compare_digest(pw, self.password)
        if scheme.lower() == "digest" and self.method == "digest":
            p = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}
            if p.get("username") != self.user or p.get("realm") != self.realm or not self._nonce_ok(p.get("nonce", "")):
                return False
            ha1 = _md5(f"{self.user}:{self.realm}:{self.password}")
            ha2 = _md5(f"{method}:{p.get('uri', uri)}")
            if p.get("qop"):
                want = _md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p['qop']}:{ha2}")
            else:
                want = _md5(f"{ha1}:{p['nonce']}:{ha2}")
            return hmac.compare_digest(want, p.get("response", ""))
        return False
