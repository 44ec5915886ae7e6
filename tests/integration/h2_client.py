"""A small HTTP/2 client for the integration tests, standard library only: hand-built frames, an
HPACK encoder (literals without indexing, no Huffman) and a full HPACK decoder (static and
dynamic tables, Huffman), flow control both ways, request trailers, and RFC 8441 extended CONNECT
for WebSockets (Debian ships no client that sends it). Plus RFC 6455 frame helpers for what the tunnel carries.

Single-threaded: every call that waits pumps frames from the socket until a bounded deadline.
Frames it answers on its own: SETTINGS (ACK), PING (ACK, unless answer_pings=False) and, for
DATA it received, WINDOW_UPDATE (so a test never stalls on its own receive window)."""

import os
import socket
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, CANCEL = 0x0, 0x1, 0x2, 0x8

# ---- HPACK (RFC 7541)

STATIC_TABLE = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
    (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
    (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
    ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
    ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
    ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
    ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
    ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
    ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
    ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]

# The Huffman code of Appendix B is canonical: the code lengths of symbols 0..256 (EOS) define it.
HUFFMAN_LENGTHS = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28,
    28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15,
    6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22,
    20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23,
    23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22,
    22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26,
    27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27,
    26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
]


def _huffman_codes():
    codes, code, previous = {}, 0, None
    for symbol in sorted(range(257), key=lambda s: (HUFFMAN_LENGTHS[s], s)):
        length = HUFFMAN_LENGTHS[symbol]
        if previous is not None:
            code = (code + 1) << (length - previous)
        previous = length
        codes[(length, code)] = symbol
    return codes


HUFFMAN_DECODE = _huffman_codes()


def huffman_decode(data):
    out, code, length = bytearray(), 0, 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            symbol = HUFFMAN_DECODE.get((length, code))
            if symbol is not None:
                if symbol == 256:
                    raise ValueError("EOS in a Huffman string")
                out.append(symbol)
                code, length = 0, 0
    if length > 7 or code != (1 << length) - 1:
        raise ValueError("bad Huffman padding")
    return bytes(out)


def encode_integer(value, prefix_bits, first_byte):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_headers(fields):
    """A header block of literals without indexing (new names, raw strings): no encoder state."""
    out = bytearray()
    for name, value in fields:
        name, value = name.encode() if isinstance(name, str) else name, value.encode() if isinstance(value, str) else value
        out += b"\x00" + encode_integer(len(name), 7, 0) + name + encode_integer(len(value), 7, 0) + value
    return bytes(out)


class HpackDecoder:
    def __init__(self, max_size=4096):
        self.table = []  # newest first
        self.size = 0
        self.max_size = max_size
        self.never_indexed = []  # (name, value) of each field sent as "never indexed" (RFC 7541 §6.2.3)

    @staticmethod
    def _integer(data, pos, prefix_bits):
        limit = (1 << prefix_bits) - 1
        value = data[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    def _string(self, data, pos):
        huffman = data[pos] & 0x80
        length, pos = self._integer(data, pos, 7)
        raw = bytes(data[pos:pos + length])
        return (huffman_decode(raw) if huffman else raw).decode("latin-1"), pos + length

    def _entry(self, index):
        if index <= 0:
            raise ValueError("HPACK index 0")
        if index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        return self.table[index - len(STATIC_TABLE) - 1]

    def _add(self, name, value):
        self.table.insert(0, (name, value))
        self.size += len(name) + len(value) + 32
        self._evict()

    def _evict(self):
        while self.size > self.max_size and self.table:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + 32

    def decode(self, data):
        fields, pos = [], 0
        while pos < len(data):
            byte = data[pos]
            if byte & 0x80:  # indexed field
                index, pos = self._integer(data, pos, 7)
                fields.append(self._entry(index))
                continue
            if byte & 0xE0 == 0x20:  # dynamic table size update
                self.max_size, pos = self._integer(data, pos, 5)
                self._evict()
                continue
            incremental = byte & 0xC0 == 0x40
            never = byte & 0xF0 == 0x10
            index, pos = self._integer(data, pos, 6 if incremental else 4)
            if index:
                name = self._entry(index)[0]
            else:
                name, pos = self._string(data, pos)
            value, pos = self._string(data, pos)
            fields.append((name, value))
            if incremental:
                self._add(name, value)
            if never:
                self.never_indexed.append((name, value))
        return fields


# ---- WebSocket frames (RFC 6455)

WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def ws_frame(payload, opcode=WS_TEXT, mask=True):
    payload = payload.encode() if isinstance(payload, str) else payload
    head = bytearray([0x80 | opcode])
    bit = 0x80 if mask else 0
    if len(payload) < 126:
        head.append(bit | len(payload))
    elif len(payload) < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", len(payload))
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", len(payload))
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    return bytes(head) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_close_frame(code=1000, reason="", mask=True):
    return ws_frame(struct.pack(">H", code) + reason.encode(), WS_CLOSE, mask)


def ws_parse(data):
    """(opcode, payload, bytes used) of the first whole frame in `data`, or None."""
    if len(data) < 2:
        return None
    opcode, length, pos = data[0] & 0x0F, data[1] & 0x7F, 2
    masked = data[1] & 0x80
    if length == 126:
        if len(data) < 4:
            return None
        length, pos = struct.unpack(">H", data[2:4])[0], 4
    elif length == 127:
        if len(data) < 10:
            return None
        length, pos = struct.unpack(">Q", data[2:10])[0], 10
    key = b""
    if masked:
        key, pos = data[pos:pos + 4], pos + 4
    if len(data) < pos + length:
        return None
    payload = bytes(data[pos:pos + length])
    if masked:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload, pos + length


# ---- the connection


class Stream:
    def __init__(self, stream_id, send_window):
        self.id = stream_id
        self.headers = None  # the response head: [(name, value)]
        self.trailers = None
        self.informational = []
        self.data = bytearray()
        self.ended = False  # END_STREAM received
        self.reset = None  # RST_STREAM error code received
        self.send_window = send_window
        self.ws_pos = 0  # bytes of `data` already returned as WebSocket frames

    @property
    def status(self):
        return int(self.header(":status")) if self.headers else None

    def header(self, name):
        for k, v in self.headers or []:
            if k == name:
                return v
        return None

    @property
    def done(self):
        return self.ended or self.reset is not None


class H2Client:
    def __init__(self, port, host="127.0.0.1", ca_file=None, server_name=None, timeout=10.0,
                 window=65535, settings=None, answer_pings=True):
        """Connects (TLS with ALPN h2 when `ca_file` is given), sends the preface and SETTINGS and
        waits for the server's SETTINGS (`self.peer_settings`)."""
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        if ca_file:
            context = ssl.create_default_context(cafile=ca_file)
            context.set_alpn_protocols(["h2"])
            self.sock = context.wrap_socket(raw, server_hostname=server_name or host)
            if self.sock.selected_alpn_protocol() != "h2":
                raise AssertionError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}")
        else:
            self.sock = raw
        self.buf = b""
        self.decoder = HpackDecoder()
        self.streams = {}
        self.next_id = 1
        self.peer_settings = None
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.send_window = 65535
        self.goaway = None  # the last GOAWAY: (last stream id, error code)
        self.goaways = []  # every GOAWAY, in order
        self.answer_pings = answer_pings
        self.pings = []  # opaque data of each PING received (not ACKs)
        self.eof = False
        self.frames = []  # (type, flags, stream id) of every frame received, in order
        self._header_block = None  # (stream id, flags, bytes) while CONTINUATION is expected
        ours = {SETTINGS_ENABLE_PUSH: 0, SETTINGS_INITIAL_WINDOW_SIZE: window}
        ours.update(settings or {})
        payload = b"".join(struct.pack(">HI", k, v) for k, v in ours.items())
        self.sock.sendall(PREFACE + self._frame(SETTINGS, 0, 0, payload))
        self.wait(lambda: self.peer_settings is not None, what="the server's SETTINGS")

    # -- sending

    @staticmethod
    def _frame(kind, flags, stream_id, payload=b""):
        return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload

    def send_frame(self, kind, flags, stream_id, payload=b""):
        self.sock.sendall(self._frame(kind, flags, stream_id, payload))

    def _answer(self, kind, flags, stream_id, payload=b""):
        """Frames the client sends on its own: the server may have closed already."""
        try:
            self.send_frame(kind, flags, stream_id, payload)
        except OSError:
            pass

    def open_stream(self, fields, end_stream=False):
        stream = Stream(self.next_id, self.peer_initial_window)
        self.next_id += 2
        self.streams[stream.id] = stream
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send_frame(HEADERS, flags, stream.id, encode_headers(fields))
        return stream

    def request(self, path, method="GET", authority="test", scheme="http", headers=(), body=None,
                trailers=None):
        """Opens a stream: HEADERS, the body's DATA, then `trailers` ([(name, value)]) as a trailing
        HEADERS frame that ends the stream."""
        fields = [(":method", method), (":scheme", scheme), (":path", path), (":authority", authority)]
        fields += list(headers)
        stream = self.open_stream(fields, end_stream=body is None and trailers is None)
        if body is not None:
            self.send_data(stream, body, end_stream=trailers is None)
        if trailers is not None:
            self.send_trailers(stream, trailers)
        return stream

    def websocket(self, path="/", authority="test", scheme="http", headers=()):
        """Opens an RFC 8441 WebSocket stream (the answer arrives later: wait for `headers`)."""
        fields = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", scheme), (":path", path),
                  (":authority", authority), ("sec-websocket-version", "13")] + list(headers)
        return self.open_stream(fields)

    def send_data(self, stream, data, end_stream=False):
        """Sends `data` in frames as the peer's windows allow (pumping for WINDOW_UPDATEs)."""
        view = memoryview(data)
        while True:
            if view.nbytes:
                self.wait(lambda: (min(self.send_window, stream.send_window) > 0 or stream.done),
                          what="send window")
                if stream.done:
                    raise AssertionError(f"stream {stream.id} ended while sending")
            n = min(view.nbytes, self.send_window, stream.send_window, self.peer_max_frame)
            last = n == view.nbytes
            self.send_frame(DATA, END_STREAM if (last and end_stream) else 0, stream.id, bytes(view[:n]))
            self.send_window -= n
            stream.send_window -= n
            view = view[n:]
            if last:
                return

    def send_trailers(self, stream, fields):
        """Ends the stream with a trailer section: a HEADERS frame with END_STREAM."""
        self.send_frame(HEADERS, END_HEADERS | END_STREAM, stream.id, encode_headers(fields))

    def end_stream(self, stream):
        self.send_frame(DATA, END_STREAM, stream.id)

    def reset(self, stream, code=CANCEL):
        self.send_frame(RST_STREAM, 0, stream.id, struct.pack(">I", code))

    def send_ws(self, stream, payload, opcode=WS_TEXT):
        self.send_data(stream, ws_frame(payload, opcode))

    # -- receiving

    def wait(self, predicate, timeout=None, what="condition"):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not predicate():
            if self.eof:
                raise AssertionError(f"connection closed while waiting for {what}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self._pump(min(left, 0.5))

    def wait_closed(self, timeout=None):
        """Pumps until the server closes the connection."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the server kept the connection open")
            self._pump(min(left, 0.5))

    def response(self, stream, timeout=None):
        self.wait(lambda: stream.done, timeout, what=f"the end of stream {stream.id}")
        return stream

    def ws_next(self, stream, timeout=None):
        """The next WebSocket frame the server sent on `stream`: (opcode, payload)."""
        found = []

        def ready():
            frame = ws_parse(stream.data[stream.ws_pos:])
            if frame:
                found.append(frame)
            return bool(found) or stream.done

        self.wait(ready, timeout, what=f"a WebSocket frame on stream {stream.id}")
        if not found:
            raise AssertionError(f"stream {stream.id} ended (reset={stream.reset}) without a frame")
        opcode, payload, used = found[0]
        stream.ws_pos += used
        return opcode, payload

    def _pump(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.eof = True
            return
        self.buf += data
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            kind, flags = self.buf[3], self.buf[4]
            stream_id = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            self.frames.append((kind, flags, stream_id))
            self._handle(kind, flags, stream_id, payload)

    def _handle(self, kind, flags, stream_id, payload):
        stream = self.streams.get(stream_id)
        if kind == SETTINGS:
            if flags & ACK:
                return
            settings = dict(struct.unpack(">HI", payload[i:i + 6]) for i in range(0, len(payload), 6))
            if SETTINGS_INITIAL_WINDOW_SIZE in settings:
                delta = settings[SETTINGS_INITIAL_WINDOW_SIZE] - self.peer_initial_window
                self.peer_initial_window = settings[SETTINGS_INITIAL_WINDOW_SIZE]
                for s in self.streams.values():
                    s.send_window += delta
            self.peer_max_frame = settings.get(SETTINGS_MAX_FRAME_SIZE, self.peer_max_frame)
            self.peer_settings = {**(self.peer_settings or {}), **settings}
            self._answer(SETTINGS, ACK, 0)
        elif kind == PING:
            if not flags & ACK:
                self.pings.append(payload)
                if self.answer_pings:
                    self._answer(PING, ACK, 0, payload)
        elif kind == WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if stream_id == 0:
                self.send_window += increment
            elif stream:
                stream.send_window += increment
        elif kind == GOAWAY:
            self.goaway = (int.from_bytes(payload[:4], "big") & 0x7FFFFFFF, int.from_bytes(payload[4:8], "big"))
            self.goaways.append(self.goaway)
        elif kind == RST_STREAM:
            if stream:
                stream.reset = int.from_bytes(payload[:4], "big")
        elif kind in (HEADERS, CONTINUATION):
            if kind == HEADERS:
                pos, end = 0, len(payload)
                if flags & PADDED:
                    pos, end = 1, len(payload) - payload[0]
                if flags & PRIORITY_FLAG:
                    pos += 5
                self._header_block = (stream_id, flags, payload[pos:end])
            else:
                sid, first_flags, block = self._header_block
                self._header_block = (sid, first_flags, block + payload)
            if flags & END_HEADERS:
                sid, first_flags, block = self._header_block
                self._header_block = None
                fields = self.decoder.decode(block)
                s = self.streams.get(sid)
                if s is not None:
                    status = dict(fields).get(":status")
                    if s.headers is None and status and status.startswith("1"):
                        s.informational.append(fields)
                    elif s.headers is None:
                        s.headers = fields
                    else:
                        s.trailers = fields
                    if first_flags & END_STREAM:
                        s.ended = True
        elif kind == DATA:
            pos, end = 0, len(payload)
            if flags & PADDED:
                pos, end = 1, len(payload) - payload[0]
            if stream:
                stream.data += payload[pos:end]
                if flags & END_STREAM:
                    stream.ended = True
            # Give the window back at once: tests control the server's pace, not ours.
            if payload:
                self._answer(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload)))
                if stream and not stream.done:
                    self._answer(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", len(payload)))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
