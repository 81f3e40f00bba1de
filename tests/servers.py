"""Real servers on localhost for the object-storage tests, started and stopped by the tests: moto's
S3-compatible server, and a plain HTTP file server that can refuse a folder (403) or break each file's
first response halfway (a transient network error)."""

import logging
import os
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

#: What the S3 clients (s3fs here, botocore in the CLIs the tests start) read to find the server.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "codo-test", "AWS_SECRET_ACCESS_KEY": "codo-test",
           "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set, restored after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's standalone S3 server on a free localhost port; yields its endpoint URL, with the AWS
    environment (endpoint, keys, region) pointing at it meanwhile."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    from s3fs import S3FileSystem

    # fsspec caches file systems by their arguments, not the environment's endpoint: one made for another
    # module's server (stopped since) would be handed out again
    S3FileSystem.clear_instance_cache()
    try:
        with environment({**AWS_ENV, "AWS_ENDPOINT_URL": endpoint}):
            yield endpoint
    finally:
        server.stop()
        S3FileSystem.clear_instance_cache()


class _Files(SimpleHTTPRequestHandler):
    """Static files; paths under /denied/ get 403; with `flaky`, each file's first response stops halfway."""

    flaky = False
    broken: set[str] = set()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/denied/"):
            self.send_error(403, "access denied")
            return
        super().do_GET()

    def copyfile(self, source, outputfile) -> None:
        if self.flaky and self.path not in self.broken:
            self.broken.add(self.path)
            data = source.read()
            outputfile.write(data[: len(data) // 2])
            self.close_connection = True  # fewer bytes than Content-Length, then the connection closes
            return
        super().copyfile(source, outputfile)


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that hangs up early (as readers that stop at a shard's end do) is no error here."""


@contextmanager
def http_server(root: Path, flaky: bool = False) -> Iterator[str]:
    """A plain HTTP server of `root` on a free localhost port (no byte ranges, no listings codo reads);
    yields its base URL."""
    handler = type("Files", (_Files,), {"flaky": flaky, "broken": set()})
    server = _Quiet(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
