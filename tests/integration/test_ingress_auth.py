"""The ingress's request checks (protocol.md §1): x-forwarded-host and every way a relay token
can be wrong, each answered with its status and x-deno-error code. A `return` location stands in
for the isolates here, and a backend shows what the upstream receives."""

import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, request, wait_until  # noqa: E402
from ingress import SECRET, SUBHOSTER, sign, relay_token, b64url  # noqa: E402

ROOT = "http://127.0.0.1:9/v1/"
CONFIG = f"""
    workers 1;
    error_log stderr info;
    subhoster {SUBHOSTER} {{ secret "{SECRET}"; }}
    subhoster fenced {{ secret "fenced-secret-0123456789"; rpc_root_allow http://origin.internal/ https://o.example/v1/; }}
    upstream backend {{ server 127.0.0.1:@BACKEND@; }}
    server {{
        listen 127.0.0.1:@PORT@;
        forwarded_host on;
        subhost_auth on;
        location / {{ return 200 "ok\\n"; }}
        location /headers {{ proxy_pass http://backend; }}
        location /open/ {{ forwarded_host off; subhost_auth off; return 200 "open\\n"; }}
        location /short/ {{ subhost_leeway 0s; return 200 "short\\n"; }}
        location = /status {{ forwarded_host off; subhost_auth off; status; }}
    }}
    server {{
        listen 127.0.0.1:@PORT@;
        server_name pass.test;
        forwarded_host on;
        subhost_auth on;
        subhost_pass_token on;
        location / {{ proxy_pass http://backend; }}
    }}
"""


def claims(**override):
    now = int(time.time())
    c = {"iat": now, "exp": now + 600, "deployment_id": "dep", "rpc_root": ROOT}
    c.update(override)
    return {k: v for k, v in c.items() if v is not None}


class IngressAuth(SubgateTestCase):
    def setUp(self):
        self.backend = self.start_backend()
        self.sg = self.start_subgate(CONFIG.replace("@BACKEND@", str(self.backend.port)))

    def send(self, token=None, host="example.com", path="/", extra=None, server="test"):
        headers = {}
        if token is not None:
            headers["x-deno-subhost"] = token
        if host is not None:
            headers["x-forwarded-host"] = host
        headers.update(extra or {})
        return request(self.sg.port, path=path, headers=headers, host=server)

    def assertError(self, r, status, code, mentions=None):
        self.assertEqual(r.status, status, r.body)
        err = r.error()
        self.assertEqual(err["code"], code)
        self.assertTrue(err["message"])
        self.assertIn(code, r.body.decode())
        if mentions:
            self.assertIn(mentions.lower(), err["message"].lower())
        self.assertNotIn(SECRET, r.raw_head.decode() + r.body.decode())

    def cache_hits(self):
        r = request(self.sg.port, path="/status")
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)["token_cache_hits"]

    def test_valid_token_passes_and_is_cached(self):
        self.assertEqual(self.cache_hits(), 0)
        token = relay_token("dep", ROOT)
        for _ in range(3):
            r = self.send(token)
            self.assertEqual((r.status, r.body), (200, b"ok\n"))
        # One worker: the first request verified the token, the next two found it in the cache.
        self.assertEqual(self.cache_hits(), 2)
        # Another token is verified, not taken for the first; a rejected one is never cached.
        self.assertEqual(self.send(relay_token("dep-2", ROOT)).status, 200)
        bad = sign(claims(), secret="another-secret-0123456789")
        for _ in range(2):
            self.assertError(self.send(bad), 401, "INVALID_XDENO_SUBHOST", "signature")
        self.assertEqual(self.cache_hits(), 2)
        self.assertEqual(self.send(token).status, 200)
        self.assertEqual(self.cache_hits(), 3)

    def test_forwarded_host(self):
        token = relay_token("dep", ROOT)
        self.assertError(self.send(token, host=None), 400, "MISSING_XFORWARDED_HOST")
        for bad in ["exa mple.com", "example.com:99999", "example.com:", "[::1", "a/b", "[zz::1]:80", "x:y:z"]:
            self.assertError(self.send(token, host=bad), 400, "INVALID_HOST_HEADER")
        for good in ["example.com", "example.com:8443", "127.0.0.1", "[::1]:443", "xn--bcher-kva.example"]:
            self.assertEqual(self.send(token, host=good).status, 200, good)

    def test_host_becomes_upstream_host_and_token_is_dropped(self):
        r = self.send(relay_token("dep", ROOT), host="tenant.example:8443", path="/headers")
        headers = {k.lower(): v for k, v in json.loads(r.body)}
        self.assertEqual(headers["host"], "tenant.example:8443")
        self.assertNotIn("x-deno-subhost", headers)
        token = relay_token("dep", ROOT)
        r = self.send(token, path="/headers", server="pass.test")
        headers = {k.lower(): v for k, v in json.loads(r.body)}
        self.assertEqual(headers["x-deno-subhost"], token)

    def test_missing_token(self):
        self.assertError(self.send(None), 401, "MISSING_XDENO_SUBHOST")
        self.assertEqual(self.send(None, host=None, path="/open/").status, 200, "auth off where configured")

    def test_every_rejection(self):
        now = int(time.time())
        good_head = {"alg": "HS256", "typ": "JWT", "kid": SUBHOSTER}
        good = relay_token("dep", ROOT)
        head_b64, claims_b64, sig_b64 = good.split(".")
        cases = {
            "alg none": (b64url(json.dumps({"alg": "none", "kid": SUBHOSTER}).encode()) + "." + claims_b64 + ".", "none"),
            "HS512": (sign(claims(), alg="HS512", header={"alg": "HS512", "kid": SUBHOSTER}), "HS512"),
            "RS256 header": (sign(claims(), header={"alg": "RS256", "kid": SUBHOSTER}), "RS256"),
            "unknown kid": (sign(claims(), kid="stranger"), "stranger"),
            "no kid": (sign(claims(), header={"alg": "HS256"}), "kid"),
            "bad signature": (head_b64 + "." + claims_b64 + "." + sig_b64[:-2] + ("AA" if sig_b64[-2:] != "AA" else "BA"), "signature"),
            "wrong secret": (sign(claims(), secret="another-secret-0123456789"), "signature"),
            "expired": (sign(claims(iat=now - 7200, exp=now - 3600)), "expired"),
            "future iat": (sign(claims(iat=now + 3600, exp=now + 7200)), "future"),
            "missing iat": (sign(claims(iat=None)), "iat"),
            "missing exp": (sign(claims(exp=None)), "exp"),
            "missing deployment_id": (sign(claims(deployment_id=None)), "deployment_id"),
            "missing rpc_root": (sign(claims(rpc_root=None)), "rpc_root"),
            "string exp": (sign(claims(exp=str(now + 60))), "exp"),
            "numeric deployment_id": (sign(claims(deployment_id=42)), "deployment_id"),
            "rpc_root without slash": (sign(claims(rpc_root="http://127.0.0.1:9/v1")), "rpc_root"),
            "relative rpc_root": (sign(claims(rpc_root="/v1/")), "rpc_root"),
            "ftp rpc_root": (sign(claims(rpc_root="ftp://x/")), "rpc_root"),
            "rpc_root not allowed": (sign(claims(rpc_root="http://evil.example/"), kid="fenced",
                                          secret="fenced-secret-0123456789"), "not allowed"),
            "two parts": (head_b64 + "." + claims_b64, None),
            "garbage": ("not-a-token", None),
            "bad base64": (head_b64 + ".***." + sig_b64, None),
            "oversized": (sign(claims(pad="x" * 9000)), "large"),
        }
        for name, (token, mentions) in cases.items():
            with self.subTest(name):
                self.assertError(self.send(token), 401, "INVALID_XDENO_SUBHOST", mentions)
        # The allow-list admits its own prefixes.
        ok = sign(claims(rpc_root="https://o.example/v1/"), kid="fenced", secret="fenced-secret-0123456789")
        self.assertEqual(self.send(ok).status, 200)

    def test_cached_token_still_expires_and_follows_reload(self):
        # /short/ has subhost_leeway 0s: a token whose exp has passed is refused at once, also
        # when the cache holds it (a hit re-checks exp against the location's leeway).
        token = sign(claims(exp=int(time.time()) + 2))
        self.assertEqual(self.send(token, path="/short/").status, 200)
        hits = self.cache_hits()
        self.assertEqual(self.send(token, path="/short/").status, 200)
        self.assertEqual(self.cache_hits(), hits + 1, "the second request is a cache hit")
        # exp is in whole seconds: it passes within 3 s. Poll (no fixed sleep) up to a deadline.
        deadline = time.monotonic() + 10
        while True:
            r = self.send(token, path="/short/")
            if r.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertError(r, 401, "INVALID_XDENO_SUBHOST", "expired")
        # The default leeway (60s) still admits it elsewhere; that is a fresh verification.
        self.assertEqual(self.send(token).status, 200)

        # A reload that changes the secret invalidates cached tokens.
        token = relay_token("dep", ROOT)
        self.assertEqual(self.send(token).status, 200)
        hits = self.cache_hits()
        self.assertEqual(self.send(token).status, 200)
        self.assertEqual(self.cache_hits(), hits + 1, "cached before the reload")
        self.sg.write_config(CONFIG.replace("@PORT@", str(self.sg.port)).replace("@BACKEND@", str(self.backend.port))
                             .replace(SECRET, "rotated-secret-0123456789abc"))
        self.sg.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in self.sg.output(), what="reload")
        r = self.send(token)
        self.assertError(r, 401, "INVALID_XDENO_SUBHOST", "signature")


if __name__ == "__main__":
    unittest.main()
