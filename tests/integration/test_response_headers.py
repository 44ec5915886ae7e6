"""add_header (the response-head phase) on every kind of response: a local reply, a proxied
response, an isolate's response and an error, over HTTP/1.1 and HTTP/2."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, request, ROOT, BIN, free_port  # noqa: E402

SECRET = "response-headers-test-secret-01"


class ResponseHeaders(SubgateTestCase):
    def setUp(self):
        self.backend = self.start_backend()
        self.origin_port = free_port()
        self.sg = self.start_subgate(f"""
            workers 1;
            subhoster local {{ secret "{SECRET}"; rpc_root_allow http://127.0.0.1:{self.origin_port}/; }}
            runtime deno {{ spare 0; }}
            upstream backend {{ server 127.0.0.1:{self.backend.port}; }}
            server {{
                listen 127.0.0.1:@PORT@ http2;
                add_header x-served-by subgate;
                add_header strict-transport-security "max-age=60" always;
                location = /local {{ return 200 "local\\n"; }}
                location /api/ {{ proxy_pass http://backend; }}
                location = /headers {{ proxy_pass http://backend; }}
                location /isolate/ {{
                    add_header x-isolate yes;
                    forwarded_host on; subhost_auth on; isolates;
                }}
            }}
            server {{
                listen 127.0.0.1:{self.origin_port};
                location / {{ origin_local {ROOT}/conf/deployments; }}
            }}
        """)

    def token(self, deployment):
        out = subprocess.run([BIN, "-c", self.sg.conf_path, "token", "--subhoster", "local",
                              "--deployment", deployment], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def test_local_reply(self):
        r = request(self.sg.port, path="/local")
        self.assertEqual((r.status, r.body), (200, b"local\n"))
        self.assertEqual(r.header("x-served-by"), "subgate")
        self.assertEqual(r.header("strict-transport-security"), "max-age=60")

    def test_proxied_response_keeps_its_own_headers(self):
        r = request(self.sg.port, path="/headers")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("x-served-by"), "subgate")
        self.assertEqual(r.header("x-end"), "1")  # the backend's own headers stay
        json.loads(r.body)  # the body arrives whole: framing is still subgate's

    def test_proxied_error_gets_only_always_headers(self):
        r = request(self.sg.port, path="/api/nothing")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, b"no such endpoint\n")
        self.assertIsNone(r.header("x-served-by"))
        self.assertEqual(r.header("strict-transport-security"), "max-age=60")

    def test_local_error_gets_only_always_headers(self):
        r = request(self.sg.port, path="/nowhere")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.error()["code"], "NOT_FOUND")
        self.assertIsNone(r.header("x-served-by"))
        self.assertEqual(r.header("strict-transport-security"), "max-age=60")

    def test_isolate_response(self):
        r = request(self.sg.port, path="/isolate/", headers={
            "x-deno-subhost": self.token("hello"), "x-forwarded-host": "demo.example"})
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b"Hello from https://demo.example/", r.body)
        self.assertEqual(r.header("x-isolate"), "yes")
        self.assertIsNone(r.header("x-served-by"))  # the location has its own add_header

    def test_http2_response(self):
        out = subprocess.run(["nghttp", "-v", f"http://127.0.0.1:{self.sg.port}/headers"],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("x-served-by: subgate", out.stdout)
        self.assertIn(":status: 200", out.stdout)


if __name__ == "__main__":
    unittest.main()
