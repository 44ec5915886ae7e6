"""Debian's Chromium, headless, for tests that look at a page as a browser shows it: the DOM after
the page's scripts ran (`dump_dom`), and a screenshot (`screenshot`). Standard library only.

Each call runs one Chromium with a temporary profile, bounded in time, in its own process group,
which is killed afterwards (Chromium leaves helper processes behind when it is cut short). Every
non-loopback connection is sent to a closed local port (a proxy that is not there; loopback
bypasses proxies), and Chromium's own background traffic is turned off: the page under test on
127.0.0.1 is the only thing it can reach."""

import html.parser
import os
import shutil
import signal
import subprocess
import tempfile

FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--no-default-browser-check", "--disable-extensions", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--metrics-recording-only", "--no-pings", "--dns-prefetch-disable", "--mute-audio",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
]


def executable():
    """The Chromium binary, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(url, extra, timeout):
    profile = tempfile.mkdtemp(prefix="subgate-chromium-")
    args = [executable(), *FLAGS, f"--user-data-dir={profile}", *extra, url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = b"", b"timed out after %d s" % timeout
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the browser and every helper it started
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def dump_dom(url, budget_ms=5000, timeout=90):
    """The DOM of `url` serialized as HTML once its scripts had `budget_ms` of virtual time."""
    code, out, err = _run(url, [f"--virtual-time-budget={budget_ms}", "--dump-dom"], timeout)
    if code != 0 or not out.strip():
        raise AssertionError(f"chromium --dump-dom {url} exited {code}:\n{err[-3000:]}")
    return out


def screenshot(url, path, size="1280,900", budget_ms=5000, timeout=90):
    """A PNG of `url` at `size` (width,height) in `path`."""
    code, _, err = _run(url, [f"--virtual-time-budget={budget_ms}", f"--window-size={size}",
                              f"--screenshot={path}", "--hide-scrollbars"], timeout)
    if code != 0 or not os.path.exists(path):
        raise AssertionError(f"chromium --screenshot {url} exited {code}:\n{err[-3000:]}")


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children = []  # Node or str

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def find_all(self, tag=None, cls=None, **attrs):
        """Descendants by tag, one class and attribute values (data_x for data-x)."""
        found = []
        for c in self.children:
            if isinstance(c, str):
                continue
            if ((tag is None or c.tag == tag) and (cls is None or cls in c.classes()) and
                    all(c.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())):
                found.append(c)
            found.extend(c.find_all(tag, cls, **attrs))
        return found

    def find(self, tag=None, cls=None, **attrs):
        found = self.find_all(tag, cls, **attrs)
        return found[0] if found else None


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class _Builder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.at = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.at)
        self.at.children.append(node)
        if tag not in VOID:
            self.at = node

    def handle_startendtag(self, tag, attrs):
        self.at.children.append(Node(tag, attrs, self.at))

    def handle_endtag(self, tag):
        node = self.at
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.at = node.parent

    def handle_data(self, data):
        self.at.children.append(data)


def parse(text):
    """A small tree of the serialized DOM (find / find_all / text)."""
    builder = _Builder()
    builder.feed(text)
    builder.close()
    return builder.root
