"""Helpers for the subhosting integration tests: HS256 relay tokens (written independently of
subgate's own JWT code), a test origin speaking the /boot protocol that can be told to fail,
stall, omit or garble x-deno-config, and a config template for an ingress with real isolates.
Standard library only."""

import base64
import gzip
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "test-secret-0123456789abcdef"
SUBHOSTER = "test"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims, secret=SECRET, kid=SUBHOSTER, alg="HS256", header=None):
    """A compact JWS. `header` replaces the whole header when given."""
    head = header if header is not None else {"alg": alg, "typ": "JWT", "kid": kid}
    signing_input = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}.get(alg, hashlib.sha256)
    signature = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(signature)


def relay_token(deployment, rpc_root, ttl=900, secret=SECRET, kid=SUBHOSTER, **extra):
    now = int(time.time())
    claims = {"iat": now, "exp": now + ttl, "deployment_id": deployment, "rpc_root": rpc_root}
    claims.update(extra)
    return sign(claims, secret=secret, kid=kid)


def verify(token, secret=SECRET):
    """The origin's side: returns the claims or raises ValueError."""
    head_b64, claims_b64, sig_b64 = token.split(".")
    head = json.loads(b64url_decode(head_b64))
    if head.get("alg") != "HS256":
        raise ValueError("alg")
    expected = hmac.new(secret.encode(), (head_b64 + "." + claims_b64).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, b64url_decode(sig_b64)):
        raise ValueError("signature")
    claims = json.loads(b64url_decode(claims_b64))
    if claims["exp"] < time.time():
        raise ValueError("expired")
    return head, claims


HELLO = 'Deno.serve((req) => new Response("hello from " + new URL(req.url).host + "\\n"));\n'


class Deployment:
    """What the test origin serves for one deployment id."""

    def __init__(self, code=HELLO, config=None, status=200, raw_config=None, omit_config=False,
                 stall=0.0, envs=None, net=None, layers=None):
        """`code`: the /boot body (str or bytes); `layers`: layer id -> bytes served at /layer."""
        self.code = code
        self.layers = layers or {}
        self.config = config if config is not None else {"entrypoint": "file:///src/main.ts"}
        if envs is not None:
            self.config["envs"] = envs
        if net is not None:
            self.config["permissions"] = {"net": net}
        self.status = status
        self.raw_config = raw_config
        self.omit_config = omit_config
        self.stall = stall


EVENT_FIELDS = {"deployment_id", "timestamp", "event_type", "event", "execution_id", "region"}


def check_events_post(headers, body, secret=SECRET):
    """The origin's side of POST /events (docs/origin.md): returns the events of the body, or
    raises ValueError saying what is wrong with the request."""
    auth = headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        raise ValueError("no bearer token")
    head, claims = verify(auth[7:], secret)
    if head.get("kid") != SUBHOSTER:
        raise ValueError("kid")
    if "deployment_id" in claims or not isinstance(claims.get("iat"), int) or not isinstance(claims.get("exp"), int):
        raise ValueError(f"claims {claims}")
    if headers.get("content-encoding") != "gzip":
        raise ValueError("content-encoding")
    if headers.get("content-type") != "application/x-ndjson":
        raise ValueError("content-type")
    events = []
    for line in gzip.decompress(body).decode().splitlines():
        event = json.loads(line)
        if set(event) != EVENT_FIELDS:
            raise ValueError(f"fields of {event}")
        events.append(event)
    return events


class Origin:
    """A /boot (and /layer) origin on 127.0.0.1 in a thread of the test process. `deployments`
    maps ids to Deployment; `boots` counts /boot calls per id; `layer_calls` lists /layer calls;
    `auth_errors` lists rejected tokens.
    POST .../events: `events` lists the events received (checked by check_events_post; what
    fails lands in `event_errors`), `event_posts` counts the POSTs; `events_answer` is the status
    to answer, or "stall" to keep the request open until stop()."""

    def __init__(self, secret=SECRET, tls_dir=None):
        """With `tls_dir`, serves HTTPS with a certificate for 127.0.0.1 made there
        (`self.ca_file` is the certificate to trust)."""
        self.deployments = {}
        self.boots = {}
        self.layer_calls = []  # (deployment id, layer id) of each /layer call
        self.auth_errors = []
        self.events = []
        self.event_errors = []
        self.event_posts = 0
        self.events_answer = 200
        self.released = threading.Event()  # ends the stalled POSTs
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                deployment_id = query.get("deployment_id", [""])[0]
                if not url.path.endswith(("/boot", "/layer")):
                    return self.answer(404, b"not found")
                auth = self.headers.get("authorization", "")
                try:
                    if not auth.startswith("Bearer "):
                        raise ValueError("no bearer")
                    head, claims = verify(auth[7:], secret)
                    if head.get("kid") != SUBHOSTER or claims.get("deployment_id") != deployment_id:
                        raise ValueError("claims")
                except (ValueError, KeyError) as e:
                    origin.auth_errors.append(str(e))
                    return self.answer(401, b"unauthorized")
                if url.path.endswith("/layer"):
                    layer_id = query.get("layer_id", [""])[0]
                    with origin.lock:
                        origin.layer_calls.append((deployment_id, layer_id))
                    d = origin.deployments.get(deployment_id)
                    layer = d.layers.get(layer_id) if d else None
                    return self.answer(404, b"no such layer") if layer is None else self.answer(200, layer)
                with origin.lock:
                    origin.boots[deployment_id] = origin.boots.get(deployment_id, 0) + 1
                d = origin.deployments.get(deployment_id)
                if d is None:
                    return self.answer(404, b"no such deployment")
                if d.stall:
                    time.sleep(d.stall)
                headers = {}
                if not d.omit_config:
                    headers["x-deno-config"] = d.raw_config if d.raw_config is not None else json.dumps(d.config)
                self.answer(d.status, d.code if isinstance(d.code, bytes) else d.code.encode(), headers)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if not urllib.parse.urlsplit(self.path).path.endswith("/events"):
                    return self.answer(404, b"not found")
                with origin.lock:
                    origin.event_posts += 1
                    answer = origin.events_answer
                if answer == "stall":
                    origin.released.wait(60)
                    return
                try:
                    events = check_events_post({k.lower(): v for k, v in self.headers.items()}, body, secret)
                except (ValueError, KeyError, OSError) as e:
                    with origin.lock:
                        origin.event_errors.append(str(e))
                    return self.answer(400, b"bad events")
                if answer == 200:
                    with origin.lock:
                        origin.events.extend(events)
                self.answer(answer, b"OK")

            def answer(self, status, body, headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients that gave up (the origin timeout tests) are expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        scheme = "http"
        if tls_dir:
            self.ca_file = os.path.join(tls_dir, "origin.pem")
            key = os.path.join(tls_dir, "origin.key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", self.ca_file], check=True, capture_output=True, timeout=60)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca_file, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.rpc_root = f"{scheme}://127.0.0.1:{self.port}/v1/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events_of(self, event_type=None, deployment=None):
        with self.lock:
            return [e for e in self.events if (event_type is None or e["event_type"] == event_type)
                    and (deployment is None or e["deployment_id"] == deployment)]

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


RUNTIME_DEFAULTS = {"spare": "0", "boot_timeout": "15s"}


def ingress_config(runtime="", location="", server="", subhoster=""):
    """An ingress on @PORT@ serving isolates, with the `test` subhoster (`subhoster`: more
    directives in its block). `runtime` directives replace the defaults of the same name."""
    given = {line.split()[0] for line in runtime.split(";") if line.strip()}
    defaults = "".join(f"{k} {v}; " for k, v in RUNTIME_DEFAULTS.items() if k not in given)
    return f"""
        workers 2;
        error_log stderr info;
        subhoster {SUBHOSTER} {{ secret "{SECRET}"; {subhoster} }}
        runtime deno {{
            {defaults}
            {runtime}
        }}
        server {{
            listen 127.0.0.1:@PORT@;
            {server}
            location / {{
                forwarded_host on;
                subhost_auth on;
                isolates;
                {location}
            }}
        }}
    """
