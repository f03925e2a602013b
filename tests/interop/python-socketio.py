"""Debian's python3-socketio client against tests/interop/apps/sio-features on port 3205.

Run with /usr/bin/python3 (the system Python that has the Debian package), PLUME_BIN set.
Each test runs twice against one server; output is TAP-like and ends with
"N passed, N failed", like the Node suites of tests/interop.
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

import socketio

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")
APP = "tests/interop/apps/sio-features"
PORT = 3205
URL = "http://127.0.0.1:%d" % PORT
REPEAT = 2
TEST_TIMEOUT = 15
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

tests = []
cleanups = []


def test(fn):
    tests.append(fn)
    return fn


def client(**opts):
    """A client disconnected when the test run ends."""
    sio = socketio.Client(reconnection=False, **opts)
    cleanups.append(sio.disconnect)
    return sio


def connect(transport, namespaces=None, auth=None):
    sio = client()
    sio.connect(URL, transports=[transport], namespaces=namespaces or ["/"], auth=auth, wait_timeout=3)
    return sio


def recorder(sio, event, namespace=None):
    """A queue receiving the arguments of every `event`."""
    q = queue.Queue()
    sio.on(event, lambda *args: q.put(args), namespace=namespace)
    return q


def get(q, what, timeout=3):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError("no %s within %s s" % (what, timeout)) from None


def until(check, what, timeout=3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("timeout after %s s: %s" % (timeout, what))


def eq(actual, expected, what=""):
    if actual != expected or type(actual) is not type(expected):
        raise AssertionError("%s\n  expected %r\n  got      %r" % (what, expected, actual))


def strict_eq(actual, expected, what=""):
    """Equality that also compares types all the way down (1 vs 1.0, [] vs {}, bytes vs str)."""
    def shape(v):
        if isinstance(v, dict):
            return ("dict", sorted((k, shape(x)) for k, x in v.items()))
        if isinstance(v, (list, tuple)):
            return (type(v).__name__, [shape(x) for x in v])
        return (type(v).__name__, v)
    if shape(actual) != shape(expected):
        raise AssertionError("%s\n  expected %r\n  got      %r" % (what, expected, actual))


ARGS = (1, -2.5, "str", "", "héllo € 😀", True, False, None, [], {}, [1, [2, []]], {"a": {"b": {}}, "list": [{}, []]})
SERVER_VALUES = {
    "int": 42, "float": 1.5, "negative": -7, "text": "héllo €", "yes": True, "no": False, "none": None,
    "list": [1, "two", {"three": 3}], "bin": b"\x00\x01\x02\xff", "nested": {"deep": {"bin": b"xyz"}},
}

for transport in ("websocket", "polling"):

    def make(transport):
        @test
        def connect_and_whoami():
            """connect: the server sees auth, protocol 4 and the transport"""
            sio = connect(transport, auth={"name": "py"})
            eq(sio.transport(), transport, "client transport")
            me = sio.call("whoami", timeout=3)
            eq(me["id"], sio.get_sid("/"), "socket id")
            eq(me["transport"], transport, "transport seen by the server")
            eq(me["protocol"], 4, "protocol")
            eq(me["nsp"], "/", "namespace")
            strict_eq(me["auth"], {"name": "py"}, "auth")
            eq(me["query_eio"], "4", "EIO query")

        @test
        def call_with_ack():
            """call: an ack returns every argument, types intact"""
            sio = connect(transport)
            strict_eq(sio.call("echo-ack", ARGS, timeout=3), ARGS, "echo-ack")
            strict_eq(sio.call("echo-return", ("one",), timeout=3), "one", "a single return value")
            strict_eq(sio.call("sum", (2, 3), timeout=3), 5, "sum")
            strict_eq(sio.call("kinds", (1, 1.5, None, [], b"x"), timeout=3),
                      ("integer", "float", "null", "table", "binary"), "kinds seen by Lua")

        @test
        def receive_event():
            """events: an emitted event comes back as echo-back"""
            sio = connect(transport)
            q = recorder(sio, "echo-back")
            sio.emit("echo", ARGS)
            strict_eq(get(q, "echo-back"), ARGS, "echo-back")

        @test
        def binary_both_ways():
            """binary: bytes nested in objects round trip; Lua-built binaries arrive as bytes"""
            sio = connect(transport)
            data = (b"\x00\x01\xff", {"nested": b"abc", "list": [b"", {"deep": b"\x09"}]})
            strict_eq(sio.call("echo-ack", data, timeout=3), data, "echo-ack with bytes")
            q = recorder(sio, "echo-back")
            sio.emit("echo", data)
            strict_eq(get(q, "echo-back"), data, "echo-back with bytes")
            strict_eq(sio.call("server-values", timeout=3), SERVER_VALUES, "server-values")

        @test
        def server_asks_client():
            """server → client acks: a handler's return value answers; no answer times out"""
            sio = client()
            answering = [True]

            def question(q):
                if answering[0]:
                    return q + "!"
                time.sleep(0.5)
                return None
            sio.on("question", question)
            sio.connect(URL, transports=[transport], wait_timeout=3)
            strict_eq(sio.call("ask", (1000, "cb"), timeout=3), (None, "q1!"), "ask cb")
            strict_eq(sio.call("ask", (1000, "wait"), timeout=3), (None, "q1!"), "ask wait")
            answering[0] = False
            strict_eq(sio.call("ask", (200, "wait"), timeout=3), ("operation has timed out", None), "ask timeout")

        @test
        def namespaces():
            """namespaces: /, /custom (auth event) and /dyn-7 on one connection"""
            sio = client()
            auth = recorder(sio, "auth", namespace="/custom")
            welcome = recorder(sio, "welcome", namespace="/dyn-7")
            sio.connect(URL, transports=[transport], namespaces=["/", "/custom", "/dyn-7"],
                        auth={"token": "abc"}, wait_timeout=3)
            strict_eq(get(auth, "auth on /custom"), ({"token": "abc"},), "auth event")
            strict_eq(get(welcome, "welcome on /dyn-7"), ("/dyn-7",), "welcome event")
            me = sio.call("whoami", namespace="/custom", timeout=3)
            eq(me["nsp"], "/custom", "namespace")
            eq(me["id"], sio.get_sid("/custom"), "socket id on /custom")
            q = recorder(sio, "message-back", namespace="/custom")
            sio.emit("message", ("to custom", [1]), namespace="/custom")
            strict_eq(get(q, "message-back"), ("to custom", [1]), "message-back on /custom")

        @test
        def middleware_refusal():
            """middleware: a refused namespace gives connect_error with message and data"""
            sio = client()
            errors = recorder(sio, "connect_error", namespace="/private")
            try:
                sio.connect(URL, transports=[transport], namespaces=["/private"], auth={"token": "no"},
                            wait_timeout=3)
            except socketio.exceptions.ConnectionError:
                pass
            else:
                raise AssertionError("connected to /private with a wrong token")
            strict_eq(get(errors, "connect_error"), ({"message": "not authorized", "data": {"code": 42}},),
                      "connect_error data")

        @test
        def rooms():
            """rooms: socket:to reaches the other client in the room only"""
            a, b, c = connect(transport), connect(transport), connect(transport)
            room = "py-%s-%d" % (transport, time.time_ns())
            a.call("join", (room,), timeout=3)
            b.call("join", (room,), timeout=3)
            qa, qb, qc = (recorder(s, "room-msg") for s in (a, b, c))
            b.call("to", (room, "hi", b"\x01"), timeout=3)
            strict_eq(get(qa, "room-msg on A"), (room, "hi", b"\x01"), "A's room-msg")
            time.sleep(0.15)
            eq(qb.qsize() + qc.qsize(), 0, "messages to the sender or to a socket outside the room")

        @test
        def disconnects():
            """disconnect: client disconnect seen by the server; server kick seen by the client"""
            a, b = connect(transport), connect(transport)
            sid = a.get_sid("/")
            a.disconnect()
            reason = [None]

            def seen():
                reason[0] = b.call("reason-of", (sid,), timeout=3)
                return reason[0] is not None
            until(seen, "the server saw the disconnect")
            # python-socketio queues "41" and then aborts the Engine.IO connection, so the
            # DISCONNECT packet may or may not get out first (the Node reference sees both)
            if reason[0] not in ("client namespace disconnect", "transport close"):
                raise AssertionError("server-side reason %r" % reason[0])

            c = client()
            gone = queue.Queue()
            c.on("disconnect", lambda: gone.put(True))
            c.connect(URL, transports=[transport], wait_timeout=3)
            kicked = c.get_sid("/")
            c.emit("kick")
            get(gone, "disconnect after kick")
            until(lambda: not c.connected, "client disconnected")
            eq(b.call("reason-of", (kicked,), timeout=3), "server namespace disconnect", "server-side reason")

        for fn in (connect_and_whoami, call_with_ack, receive_event, binary_both_ways, server_asks_client,
                   namespaces, middleware_refusal, rooms, disconnects):
            fn.label = "[%s] %s" % (transport, fn.__doc__)

    make(transport)


# ---- runner ---------------------------------------------------------------------------

def port_open():
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=0.2):
            return True
    except OSError:
        return False


def start_server():
    binary = os.environ.get("PLUME_BIN")
    if not binary or not os.path.isfile(binary):
        raise RuntimeError("PLUME_BIN is not a file: %r" % binary)
    if port_open():
        raise RuntimeError("port %d is already in use" % PORT)
    os.makedirs(ARTIFACTS, exist_ok=True)
    log_path = os.path.join(ARTIFACTS, "python-socketio.server.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([binary, os.path.join(ROOT, APP), "--port", str(PORT), "--no-watch"],
                            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited at start (code %s), see %s" % (proc.returncode, log_path))
        if port_open():
            return proc, log_path
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not accept connections on port %d within 15 s" % PORT)


def stop_server(proc, log_path):
    problems = []
    if proc.poll() is not None:
        problems.append("server died during the suite (code %s)" % proc.returncode)
    else:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=12)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            problems.append("server did not exit within 12 s of SIGTERM")
    with open(log_path, errors="replace") as f:
        reports = [line.rstrip() for line in f if any(s in line for s in SANITIZER)]
    if reports:
        problems.append("sanitizer report in %s:\n%s" % (log_path, "\n".join(reports[:5])))
    return problems


def run_once(fn):
    result = []

    def body():
        try:
            fn()
            result.append(None)
        except BaseException:  # noqa: B902 - report every failure of the test body
            result.append(traceback.format_exc(limit=4))

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(TEST_TIMEOUT)
    for cleanup in reversed(cleanups):
        try:
            cleanup()
        except Exception:  # noqa: B902 - a failed cleanup must not hide the result
            pass
    cleanups.clear()
    if t.is_alive():
        return "timeout after %d s" % TEST_TIMEOUT
    return result[0]


def indent(text):
    return "\n".join("#   " + line for line in str(text).rstrip().split("\n")[-12:])


def main():
    print("# python-socketio: %d tests, each run %d times" % (len(tests), REPEAT), flush=True)
    try:
        proc, log_path = start_server()
    except RuntimeError as err:
        print("not ok 1 - start the server\n%s\n0 passed, 1 failed" % indent(err))
        return 1
    passed = failed = 0
    for n, fn in enumerate(tests, 1):
        errors = []
        for i in range(1, REPEAT + 1):
            err = run_once(fn)
            if err:
                errors.append("run %d/%d: %s" % (i, REPEAT, err))
        if errors:
            failed += 1
            print("not ok %d - %s\n%s" % (n, fn.label, indent("\n".join(errors))), flush=True)
        else:
            passed += 1
            print("ok %d - %s" % (n, fn.label), flush=True)
    problems = stop_server(proc, log_path)
    if problems:
        failed += 1
        print("not ok %d - server %s ran clean\n%s" % (len(tests) + 1, APP, indent("\n".join(problems))))
    else:
        passed += 1
        print("ok %d - server %s ran clean" % (len(tests) + 1, APP))
    print("# server log: %s" % os.path.relpath(log_path, ROOT))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
