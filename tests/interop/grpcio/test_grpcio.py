"""Native gRPC through protogate with a real non-tonic client: Python grpcio.

No generated code: the message classes come from descriptors/library.binpb
(a FileDescriptorSet) through protobuf's descriptor pool, and the calls use
grpcio's generic channel methods (unary_unary, unary_stream, stream_unary,
stream_stream) on the method paths.

    python test_grpcio.py --backend HOST:PORT --gateway HOST:PORT

A few checks go straight to the backend first, as controls that the harness
itself is right; the rest go through the gateway. One line per check, then
"grpcio: N passed, N failed"; the exit code is non-zero on any failure.
run.sh starts the backend and the gateway and calls this.
"""

import argparse
import os
import queue
import sys
import time
import traceback

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.rpc import error_details_pb2
from grpc_status import rpc_status

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SERVICE = "/library.v1.LibraryService/"
# Every RPC gets a deadline: nothing here may hang.
TIMEOUT = 10.0
SHELF1 = ["The Left Hand of Darkness", "Beloved", "Good Omens"]
# The 1x1 GIF the backend sets as shelves/1/books/1's cover_thumbnail.
THUMBNAIL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
GZIP_MAGIC = b"\x1f\x8b"


# ---------------------------------------------------------------------------
# Messages from the descriptor set.
# ---------------------------------------------------------------------------


def load_pool(path):
    """A fresh pool (not the default one, where googleapis-common-protos
    registers its own google/api files) holding every file of the set."""
    with open(path, "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    pending = list(fds.file)
    added = set()
    while pending:
        ready = [f for f in pending if all(d in added for d in f.dependency)]
        if not ready:
            raise RuntimeError(f"unresolvable imports in {path}: {[f.name for f in pending]}")
        for f in ready:
            pool.Add(f)
            added.add(f.name)
            pending.remove(f)
    return pool


POOL = load_pool(os.path.join(ROOT, "descriptors", "library.binpb"))


def msg(name):
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(name))


Book = msg("library.v1.Book")
GetBookRequest = msg("library.v1.GetBookRequest")
StreamBooksRequest = msg("library.v1.StreamBooksRequest")
ImportBookRequest = msg("library.v1.ImportBookRequest")
ImportBooksResponse = msg("library.v1.ImportBooksResponse")
UploadBookRequest = msg("library.v1.UploadBookRequest")
UploadBookResponse = msg("library.v1.UploadBookResponse")
DownloadBookRequest = msg("library.v1.DownloadBookRequest")
DiscussionMessage = msg("library.v1.DiscussionMessage")
HttpBody = msg("google.api.HttpBody")


def raw(b):
    """A response deserializer that keeps the bytes as they arrived."""
    return b


def unary_unary(ch, method, req, resp):
    return ch.unary_unary(
        SERVICE + method,
        request_serializer=req.SerializeToString,
        response_deserializer=resp.FromString if resp is not raw else raw,
    )


def unary_stream(ch, method, req, resp):
    return ch.unary_stream(
        SERVICE + method,
        request_serializer=req.SerializeToString,
        response_deserializer=resp.FromString if resp is not raw else raw,
    )


def stream_unary(ch, method, req, resp):
    return ch.stream_unary(
        SERVICE + method, request_serializer=req.SerializeToString, response_deserializer=resp.FromString
    )


def stream_stream(ch, method, req, resp):
    return ch.stream_stream(
        SERVICE + method, request_serializer=req.SerializeToString, response_deserializer=resp.FromString
    )


def channel(addr, options=(), **kw):
    # Loopback only: never through an http_proxy/grpc_proxy from the environment.
    ch = grpc.insecure_channel(addr, options=[("grpc.enable_http_proxy", 0), *options], **kw)
    grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
    return ch


# ---------------------------------------------------------------------------
# A tiny runner: one line per check.
# ---------------------------------------------------------------------------


class Failed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)


def eq(got, want, what):
    if got != want:
        raise Failed(f"{what}: got {got!r}, want {want!r}")


def describe(e):
    """Everything grpcio tells about a failed call."""
    if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
        return (
            f"RpcError code={e.code()} details={e.details()!r} "
            f"initial_metadata={e.initial_metadata()!r} trailing_metadata={e.trailing_metadata()!r}"
        )
    return f"{type(e).__name__}: {e}"


CHECKS = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn

    return register


def md(pairs):
    """Metadata pairs as a dict of key -> list of values."""
    out = {}
    for k, v in pairs or ():
        out.setdefault(k, []).append(v)
    return out


def rpc_error(fn):
    """Runs fn, which must fail with an RpcError; returns it."""
    try:
        fn()
    except grpc.RpcError as e:
        return e
    raise Failed("the call succeeded; an error was expected")


# ---------------------------------------------------------------------------
# The checks. `t` holds the channels (t.direct, t.gw, t.gz) and addresses.
# ---------------------------------------------------------------------------


def get_book_checked(ch):
    call_md = (("x-echo-tenant", "acme"), ("x-echo-trace-bin", b"\x00\x01\xfe\xff"))
    book, call = unary_unary(ch, "GetBook", GetBookRequest, Book).with_call(
        GetBookRequest(name="shelves/1/books/1"), metadata=call_md, timeout=TIMEOUT
    )
    eq(book.title, "The Left Hand of Darkness", "title")
    eq(list(book.authors), ["Ursula K. Le Guin"], "authors")
    eq(book.page_count, 304, "page_count")
    eq(book.cover_thumbnail, THUMBNAIL_GIF, "cover_thumbnail bytes")
    eq((book.read_time.seconds, book.read_time.nanos), (9 * 3600 + 30 * 60, 500_000_000), "read_time")
    eq(book.rating.value, 5, "rating (Int32Value)")
    eq(dict(book.labels), {"award": "hugo", "format": "paperback"}, "labels")
    eq(call.code(), grpc.StatusCode.OK, "code")
    initial = md(call.initial_metadata())
    eq(initial.get("x-echo-tenant"), ["acme"], f"x-echo-tenant in initial metadata {initial}")
    eq(initial.get("x-echo-trace-bin"), [b"\x00\x01\xfe\xff"], f"x-echo-trace-bin in initial metadata {initial}")
    eq(initial.get("x-served-by"), ["library-server"], f"x-served-by in initial metadata {initial}")
    trailing = call.trailing_metadata()
    expect(trailing is not None, "trailing metadata missing")
    return f"{book.title!r}, echo + x-served-by in initial metadata, trailing={trailing!r}"


def stream_books_checked(ch):
    call = unary_stream(ch, "StreamBooks", StreamBooksRequest, Book)(
        StreamBooksRequest(parent="shelves/1"), metadata=(("x-echo-stream", "yes"),), timeout=TIMEOUT
    )
    titles = [b.title for b in call]
    eq(titles, SHELF1, "titles in order")
    eq(call.code(), grpc.StatusCode.OK, "code")
    eq(md(call.initial_metadata()).get("x-echo-stream"), ["yes"], "x-echo-stream in initial metadata")
    return f"{len(titles)} books in order, code OK"


def not_found_checked(ch):
    e = rpc_error(
        lambda: unary_unary(ch, "GetBook", GetBookRequest, Book)(
            GetBookRequest(name="shelves/1/books/999"), metadata=(("x-echo-tenant", "acme"),), timeout=TIMEOUT
        )
    )
    eq(e.code(), grpc.StatusCode.NOT_FOUND, f"code ({describe(e)})")
    expect("shelves/1/books/999" in (e.details() or ""), f"details name the book: {e.details()!r}")
    status = rpc_status.from_call(e)
    expect(status is not None, f"no grpc-status-details-bin in trailing metadata: {describe(e)}")
    eq(status.code, grpc.StatusCode.NOT_FOUND.value[0], "google.rpc.Status.code")
    eq(len(status.details), 1, "google.rpc.Status.details count")
    info = error_details_pb2.ResourceInfo()
    expect(status.details[0].Unpack(info), f"detail is not ResourceInfo: {status.details[0].type_url}")
    eq(info.resource_name, "shelves/1/books/999", "ResourceInfo.resource_name")
    eq(info.resource_type, "library.v1.Book", "ResourceInfo.resource_type")
    both = md(tuple(e.initial_metadata() or ()) + tuple(e.trailing_metadata() or ()))
    eq(both.get("x-echo-tenant"), ["acme"], "x-echo-tenant on the error")
    return f"NOT_FOUND {e.details()!r}, ResourceInfo {info.resource_name}, echo kept"


@check("direct (control): unary GetBook")
def _(t):
    return get_book_checked(t.direct)


@check("direct (control): server stream StreamBooks")
def _(t):
    return stream_books_checked(t.direct)


@check("direct (control): NOT_FOUND with google.rpc.Status details")
def _(t):
    return not_found_checked(t.direct)


@check("direct (control): the backend refuses gzip requests (so grpcio really compresses)")
def _(t):
    ch = channel(t.backend, compression=grpc.Compression.Gzip)
    try:
        e = rpc_error(
            lambda: unary_unary(ch, "GetBook", GetBookRequest, Book)(
                GetBookRequest(name="shelves/1/books/1"), timeout=TIMEOUT
            )
        )
    finally:
        ch.close()
    eq(e.code(), grpc.StatusCode.UNIMPLEMENTED, f"code ({describe(e)})")
    return f"{e.code().name} {e.details()!r}"


@check("unary GetBook: message, metadata both ways, code OK")
def _(t):
    return get_book_checked(t.gw)


@check("server stream StreamBooks: 3 books in order")
def _(t):
    return stream_books_checked(t.gw)


@check("server stream: each book arrives when sent (interval 300ms)")
def _(t):
    call = unary_stream(t.gw, "StreamBooks", StreamBooksRequest, Book)
    req = StreamBooksRequest(parent="shelves/1")
    req.interval.FromMilliseconds(300)
    start = time.monotonic()
    arrivals = [(b.title, time.monotonic() - start) for b in call(req, timeout=TIMEOUT)]
    eq([a[0] for a in arrivals], SHELF1, "titles")
    # Relative to the last book, so a slow start on a busy machine is no failure.
    first, last = arrivals[0][1], arrivals[2][1]
    expect(last - first >= 0.5, f"books bunched together: first at {first:.3f}s, last at {last:.3f}s")
    return "arrivals at " + ", ".join(f"{s:.2f}s" for _, s in arrivals)


@check("server stream: an error after 2 books (x-fail-after) ends it with ABORTED")
def _(t):
    it = unary_stream(t.gw, "StreamBooks", StreamBooksRequest, Book)(
        StreamBooksRequest(parent="shelves/1"), metadata=(("x-fail-after", "2"),), timeout=TIMEOUT
    )
    got = []
    try:
        for b in it:
            got.append(b.title)
    except grpc.RpcError as e:
        eq(got, SHELF1[:2], "books before the error")
        eq(e.code(), grpc.StatusCode.ABORTED, f"code ({describe(e)})")
        eq(e.details(), "failed after 2 books", "details")
        return f"{len(got)} books, then {e.code().name} {e.details()!r}"
    raise Failed(f"stream ended without an error after {got}")


@check("client stream ImportBooks: 3 books imported, in order")
def _(t):
    titles = ["Imported One", "Imported Two", "Imported Three"]
    reqs = [ImportBookRequest(parent="shelves/3", book=Book(title=x, authors=["grpcio"])) for x in titles]
    resp, call = stream_unary(t.gw, "ImportBooks", ImportBookRequest, ImportBooksResponse).with_call(
        iter(reqs), metadata=(("x-echo-client", "python"),), timeout=TIMEOUT
    )
    eq(resp.imported_count, 3, "imported_count")
    eq(len(set(resp.names)), 3, f"distinct names {list(resp.names)}")
    eq(md(call.initial_metadata()).get("x-echo-client"), ["python"], "x-echo-client")
    get = unary_unary(t.gw, "GetBook", GetBookRequest, Book)
    eq([get(GetBookRequest(name=n), timeout=TIMEOUT).title for n in resp.names], titles, "imported titles")
    return f"imported {list(resp.names)}"


@check("client stream UploadBook: 3 chunks, then DownloadBook returns the bytes")
def _(t):
    parts = [b"chapter one\n", b"\x00\x01binary\xff\n", b"the end\n"]
    reqs = [
        UploadBookRequest(
            name="shelves/2/books/1",
            chunk=HttpBody(content_type="text/plain" if i == 0 else "", data=p),
        )
        for i, p in enumerate(parts)
    ]
    resp = stream_unary(t.gw, "UploadBook", UploadBookRequest, UploadBookResponse)(iter(reqs), timeout=TIMEOUT)
    eq((resp.name, resp.size, resp.content_type, resp.chunks),
       ("shelves/2/books/1", sum(map(len, parts)), "text/plain", 3), "UploadBookResponse")
    chunks = list(
        unary_stream(t.gw, "DownloadBook", DownloadBookRequest, HttpBody)(
            DownloadBookRequest(name="shelves/2/books/1", chunk_size=10), timeout=TIMEOUT
        )
    )
    eq(b"".join(c.data for c in chunks), b"".join(parts), "downloaded bytes")
    eq(chunks[0].content_type, "text/plain", "first chunk's content type")
    return f"{resp.size} bytes in {resp.chunks} chunks up, {len(chunks)} chunks down"


@check("large messages: 1 MiB up (UploadBook) and 1 MiB down (DownloadBook)")
def _(t):
    data = bytes((i * 7 + i // 251) % 256 for i in range(1 << 20))
    req = UploadBookRequest(name="shelves/2/books/2", chunk=HttpBody(content_type="application/octet-stream", data=data))
    resp = stream_unary(t.gw, "UploadBook", UploadBookRequest, UploadBookResponse)(iter([req]), timeout=TIMEOUT)
    eq(resp.size, len(data), "size received")
    chunks = list(
        unary_stream(t.gw, "DownloadBook", DownloadBookRequest, HttpBody)(
            DownloadBookRequest(name="shelves/2/books/2", chunk_size=1 << 20), timeout=TIMEOUT
        )
    )
    eq(len(chunks), 1, "one chunk")
    expect(chunks[0].data == data, "downloaded bytes differ")
    return "1 MiB each way, bytes equal"


def discuss_ping_pong(ch, n=3, **kw):
    """Sends message i only after the echo of message i-1 came back: proves
    the gateway relays each message at once both ways, not at half-close."""
    outbox = queue.Queue()

    def requests():
        while True:
            m = outbox.get(timeout=TIMEOUT)
            if m is None:
                return
            yield m

    call = stream_stream(ch, "Discuss", DiscussionMessage, DiscussionMessage)(
        requests(), metadata=(("x-echo-room", "r1"),), timeout=TIMEOUT, **kw
    )
    got = []
    try:
        for i in range(n):
            outbox.put(DiscussionMessage(shelf="shelves/1", user="py", text=f"message {i}"))
            reply = next(call)
            got.append(reply)
        outbox.put(None)
        rest = list(call)
    except BaseException:
        outbox.put(None)
        call.cancel()
        raise
    eq(rest, [], "messages after half-close")
    eq([m.text for m in got], [f"message {i}" for i in range(n)], "echoed texts in order")
    expect(all(m.user == "py" and m.shelf == "shelves/1" for m in got), f"echoed fields {got}")
    expect(all(m.send_time.seconds > 0 for m in got), "send_time set by the server")
    eq(call.code(), grpc.StatusCode.OK, "code")
    eq(md(call.initial_metadata()).get("x-echo-room"), ["r1"], "x-echo-room")
    return f"{n} messages echoed one by one with send_time, code OK"


@check("bidi Discuss: ping-pong, each echo before the next message is sent")
def _(t):
    return discuss_ping_pong(t.gw)


@check("unknown method: UNIMPLEMENTED")
def _(t):
    e = rpc_error(lambda: unary_unary(t.gw, "NoSuchMethod", GetBookRequest, Book)(GetBookRequest(), timeout=TIMEOUT))
    eq(e.code(), grpc.StatusCode.UNIMPLEMENTED, f"code ({describe(e)})")
    return f"{e.code().name} {e.details()!r}"


@check("error: NOT_FOUND with google.rpc.Status details (grpc-status-details-bin)")
def _(t):
    return not_found_checked(t.gw)


@check("error: INVALID_ARGUMENT with a BadRequest field violation")
def _(t):
    e = rpc_error(
        lambda: unary_unary(t.gw, "GetBook", GetBookRequest, Book)(GetBookRequest(name="nonsense"), timeout=TIMEOUT)
    )
    eq(e.code(), grpc.StatusCode.INVALID_ARGUMENT, f"code ({describe(e)})")
    status = rpc_status.from_call(e)
    expect(status is not None, f"no grpc-status-details-bin: {describe(e)}")
    bad = error_details_pb2.BadRequest()
    expect(status.details[0].Unpack(bad), f"detail is not BadRequest: {status.details[0].type_url}")
    eq(bad.field_violations[0].field, "name", "field violation")
    return f"{e.details()!r}, violation on {bad.field_violations[0].field!r}"


@check("deadline: a 0.5s timeout on a slow stream (2s between books) ends in DEADLINE_EXCEEDED")
def _(t):
    req = StreamBooksRequest(parent="shelves/1")
    req.interval.FromSeconds(2)
    got = []
    start = time.monotonic()
    try:
        for b in unary_stream(t.gw, "StreamBooks", StreamBooksRequest, Book)(req, timeout=0.5):
            got.append(b.title)
    except grpc.RpcError as e:
        took = time.monotonic() - start
        eq(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED, f"code ({describe(e)})")
        eq(got, SHELF1[:1], "books before the deadline")
        expect(took < 1.5, f"took {took:.2f}s")
        return f"1 book, then {e.code().name} {e.details()!r} after {took:.2f}s"
    raise Failed(f"no deadline error; got {got}")


@check("deadline: the gateway still serves after the expired call")
def _(t):
    b = unary_unary(t.gw, "GetBook", GetBookRequest, Book)(GetBookRequest(name="shelves/1/books/2"), timeout=TIMEOUT)
    eq(b.title, "Beloved", "title")
    return "GetBook OK"


# --- gzip: grpc.Compression.Gzip on the channel compresses every request
# message and sends grpc-encoding: gzip (the backend control above shows it).


@check("gzip: unary GetBook with a compressed request")
def _(t):
    b, call = unary_unary(t.gz, "GetBook", GetBookRequest, Book).with_call(
        GetBookRequest(name="shelves/1/books/1"), timeout=TIMEOUT
    )
    eq(b.title, "The Left Hand of Darkness", "title")
    eq(b.cover_thumbnail, THUMBNAIL_GIF, "cover_thumbnail bytes")
    return "title OK"


@check("gzip: server stream StreamBooks")
def _(t):
    return stream_books_checked(t.gz)


@check("gzip: client stream ImportBooks, compressed messages")
def _(t):
    reqs = [ImportBookRequest(parent="shelves/2", book=Book(title=f"Zipped {i}", authors=["x" * 2000])) for i in range(3)]
    resp = stream_unary(t.gz, "ImportBooks", ImportBookRequest, ImportBooksResponse)(iter(reqs), timeout=TIMEOUT)
    eq(resp.imported_count, 3, "imported_count")
    b = unary_unary(t.gz, "GetBook", GetBookRequest, Book)(GetBookRequest(name=resp.names[2]), timeout=TIMEOUT)
    eq((b.title, list(b.authors)), ("Zipped 2", ["x" * 2000]), "third imported book")
    return f"imported {list(resp.names)}"


@check("gzip: bidi Discuss ping-pong")
def _(t):
    return discuss_ping_pong(t.gz)


@check("gzip: a 64 KiB compressed upload arrives whole")
def _(t):
    data = (b"All work and no play makes Jack a dull boy.\n" * 1500)[: 64 * 1024]
    req = UploadBookRequest(name="shelves/3/books/1", chunk=HttpBody(content_type="text/plain", data=data))
    resp = stream_unary(t.gz, "UploadBook", UploadBookRequest, UploadBookResponse)(iter([req]), timeout=TIMEOUT)
    eq(resp.size, len(data), "size")
    got = b"".join(
        c.data
        for c in unary_stream(t.gz, "DownloadBook", DownloadBookRequest, HttpBody)(
            DownloadBookRequest(name="shelves/3/books/1", chunk_size=8192), timeout=TIMEOUT
        )
    )
    expect(got == data, "downloaded bytes differ")
    return f"{len(data)} bytes up and down"


def download_raw(t, options):
    """DownloadBook (one ~2.4 KiB message) on a channel that hands the
    response payload over undecompressed ('grpc.per_message_decompression'
    off): gzip bytes mean the gateway compressed the response message."""
    ch = channel(t.gateway, options=options)
    try:
        return list(
            unary_stream(ch, "DownloadBook", DownloadBookRequest, raw)(
                DownloadBookRequest(name="shelves/1/books/2", chunk_size=8192), timeout=TIMEOUT
            )
        )
    finally:
        ch.close()


@check("gzip: the response is compressed when the client accepts gzip")
def _(t):
    payloads = download_raw(t, [("grpc.per_message_decompression", 0)])
    eq(len(payloads), 1, "messages")
    p = payloads[0]
    expect(p[:2] == GZIP_MAGIC, f"response message not gzip: {len(p)} bytes starting {p[:8]!r}")
    import gzip

    body = HttpBody.FromString(gzip.decompress(p))
    expect(body.data.startswith(b"Beloved\nby Toni Morrison"), f"inflated text {body.data[:40]!r}")
    return f"{len(p)} gzip bytes inflate to a {len(body.data)}-byte HttpBody"


@check("gzip: the response is not compressed when the client accepts identity only")
def _(t):
    # Bit 0 = identity: grpc-accept-encoding lists identity alone.
    payloads = download_raw(
        t, [("grpc.per_message_decompression", 0), ("grpc.compression_enabled_algorithms_bitset", 1)]
    )
    eq(len(payloads), 1, "messages")
    p = payloads[0]
    expect(p[:2] != GZIP_MAGIC, "compressed although the client accepts identity only")
    body = HttpBody.FromString(p)
    expect(body.data.startswith(b"Beloved\nby Toni Morrison"), f"text {body.data[:40]!r}")
    return f"{len(p)} plain bytes"


# ---------------------------------------------------------------------------


class Targets:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", required=True, help="HOST:PORT of the example backend")
    ap.add_argument("--gateway", required=True, help="HOST:PORT of the gateway")
    ap.add_argument("-k", default="", help="only checks whose name contains this")
    args = ap.parse_args()
    print(f"grpcio {grpc.__version__}; backend {args.backend}; gateway {args.gateway}", flush=True)

    t = Targets()
    t.backend, t.gateway = args.backend, args.gateway
    t.direct = channel(args.backend)
    t.gw = channel(args.gateway)
    t.gz = channel(args.gateway, compression=grpc.Compression.Gzip)

    passed = failed = 0
    for name, fn in CHECKS:
        if args.k not in name:
            continue
        try:
            note = fn(t)
            passed += 1
            print(f"ok   {name}" + (f" -- {note}" if note else ""), flush=True)
        except Exception as e:  # noqa: BLE001 -- every failure is reported
            failed += 1
            print(f"FAIL {name}: {describe(e)}", flush=True)
            if not isinstance(e, (Failed, grpc.RpcError)):
                traceback.print_exc()
    for ch in (t.direct, t.gw, t.gz):
        ch.close()
    print(f"grpcio: {passed} passed, {failed} failed", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
