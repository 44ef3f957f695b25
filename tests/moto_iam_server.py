"""moto's S3 server with IAM authentication answering anonymous requests as AWS does.

Run as a script: ``python moto_iam_server.py HOST PORT``. It serves moto's own application
(as ``python -m moto.server`` does) behind one addition: once authentication is on (see
``s3server.run_moto_with_iam``), an unsigned request gets 403 AccessDenied, which is what
AWS answers a worker that has no credentials at all. moto 5 crashes on such a request instead
(its IAM check reads the missing Authorization header) and answers 500, which a client must
take for a server error and retry.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _signed(environ: dict[str, Any]) -> bool:
    # Header signatures (every SDK call) or query signatures (presigned URLs).
    return "HTTP_AUTHORIZATION" in environ or "X-Amz-Signature" in environ.get("QUERY_STRING", "")


def deny_anonymous(app: WsgiApp) -> WsgiApp:
    """``app``, with unsigned requests refused while moto authenticates requests."""
    from moto import settings

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        enforcing = settings.INITIAL_NO_AUTH_ACTION_COUNT == 0
        control = environ.get("PATH_INFO", "").startswith("/moto-api")
        if enforcing and not control and not _signed(environ):
            body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else _DENIED
            start_response(
                "403 Forbidden",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return app(environ, start_response)

    return wrapped


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = deny_anonymous(DomainDispatcherApplication(create_backend_app))
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
