"""The JSON base handler: body parsing, content types, credentials and error bodies.

Every handler of the node derives from ``JsonHandler``. Handlers parse and validate the
request, call a service and serialize the result; services raise the errors of
``seventweets.errors`` and this module alone maps them to status codes.
"""

from __future__ import annotations

import gzip
import hmac
import json
import logging
import time
from http import HTTPStatus
from typing import Any, overload

import tornado.http1connection
import tornado.web

from seventweets import errors
from seventweets.inflight import InFlight
from seventweets.jsonutil import decode_json, json_type_name
from seventweets.metrics import NodeMetrics

log = logging.getLogger(__name__)

ERROR_STATUS: dict[type[errors.SevenTweetsError], int] = {
    errors.BadRequestError: 400,
    errors.UnauthorizedError: 401,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.PayloadTooLargeError: 413,
    errors.UnsupportedMediaTypeError: 415,
    errors.ValidationError: 422,
    errors.PeerTimeoutError: 504,
    errors.PeerError: 502,
    errors.DatabaseUnavailableError: 503,
}

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
DEFAULT_MAX_BODY_SIZE = 64 * 1024
# zlib level for compressed responses. A 50-member table (5.7 KB) shrinks 8.5-fold at
# level 1 and 8.7-fold at the default 6, in about 90 against 100 microseconds.
GZIP_LEVEL = 1


def status_of(error: errors.SevenTweetsError) -> int:
    """Return the HTTP status of a domain error, the most specific class first."""
    for cls in type(error).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def dump_json(value: Any) -> bytes:
    # ensure_ascii=False keeps non-ASCII text readable; lone surrogates never get this far
    # because validation rejects them on the way in.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@tornado.web.stream_request_body
class JsonHandler(tornado.web.RequestHandler):
    """Base of every route: JSON in, JSON out, one error shape for every failure.

    The body is streamed so that an oversized one is rejected with a JSON 413 as soon as
    its declared or received size passes the maximum, instead of being buffered first.
    """

    # Name of the route in metrics and logs; subclasses set it.
    route = "unknown"

    def initialize(self, **collaborators: Any) -> None:
        for key, value in collaborators.items():
            setattr(self, key, value)
        self._body_chunks: list[bytes] = []
        self._body_size = 0
        self._started = time.perf_counter()
        # Apps built without the node's tracker, as some tests build them, count nothing.
        self._in_flight: InFlight | None = self.settings.get("in_flight")
        if self._in_flight is not None:
            self._in_flight.enter()

    @property
    def metrics(self) -> NodeMetrics:
        return self.settings["metrics"]

    @property
    def max_body_size(self) -> int:
        return self.settings.get("max_body_size", DEFAULT_MAX_BODY_SIZE)

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", JSON_CONTENT_TYPE)

    def compute_etag(self) -> None:
        # Bodies change with every write, and hashing each response costs throughput.
        return None

    def prepare(self) -> None:
        headers = self.request.headers
        declared = headers.get("Content-Length")
        size = int(declared) if declared is not None and declared.isdigit() else None
        if size is not None and size > self.max_body_size:
            raise errors.PayloadTooLargeError(
                f"request body of {declared} bytes is larger than the maximum of "
                f"{self.max_body_size} bytes"
            )
        has_body = (size is not None and size > 0) or "Transfer-Encoding" in headers
        if has_body and self._in_flight is not None:
            self._in_flight.body_started(self)

    def close_connection(self) -> None:
        """Close the connection without a response, for a body that stopped arriving."""
        connection = self.request.connection
        assert isinstance(connection, tornado.http1connection.HTTP1Connection)
        connection.close()

    def data_received(self, chunk: bytes) -> None:
        # An exception raised here would close the connection without a response, so an
        # oversized body without Content-Length (chunked) is dropped here and reported by
        # ``body`` as a 413.
        self._body_size += len(chunk)
        if self._body_size > self.max_body_size:
            self._body_chunks.clear()
            return
        self._body_chunks.append(chunk)

    @property
    def body(self) -> bytes:
        """Return the raw request body; raise PayloadTooLargeError past the maximum."""
        if self._in_flight is not None:
            # The HTTP method runs once the whole body has arrived.
            self._in_flight.body_ended(self)
        if self._body_size > self.max_body_size:
            raise errors.PayloadTooLargeError(
                f"request body is larger than the maximum of {self.max_body_size} bytes"
            )
        return b"".join(self._body_chunks)

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        try:
            return super().decode_argument(value, name)
        except tornado.web.HTTPError:
            if name is None:
                # A path segment that is not UTF-8 names nothing that can exist.
                raise errors.NotFoundError(
                    f"no resource matches {self.request.path}"
                ) from None
            raise errors.BadRequestError(
                f"query parameter {name!r} is not valid UTF-8"
            ) from None

    # -- request parsing --------------------------------------------------------------

    def parse_json_body(self, required: bool = True) -> dict[str, Any] | None:
        """Parse the request body as a JSON object.

        Returns None when the body is empty and ``required`` is false.
        """
        raw = self.body
        if not raw and not required:
            return None
        self.check_json_media_type()
        if not raw:
            raise errors.BadRequestError("request body is empty; send a JSON object")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.BadRequestError(
                f"request body is not valid UTF-8 at byte {exc.start}"
            ) from None
        try:
            value = decode_json(text)
        except ValueError as exc:
            raise errors.BadRequestError(
                f"request body is not valid JSON: {exc}"
            ) from None
        if not isinstance(value, dict):
            raise errors.BadRequestError(
                f"request body must be a JSON object, not {json_type_name(value)}"
            )
        return value

    def check_json_media_type(self) -> None:
        header = self.request.headers.get("Content-Type")
        if header is None:
            raise errors.UnsupportedMediaTypeError(
                "Content-Type header is missing; send application/json"
            )
        media_type, _, params = header.partition(";")
        if media_type.strip().lower() != "application/json":
            raise errors.UnsupportedMediaTypeError(
                f"Content-Type {header!r} is not supported; send application/json"
            )
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                charset = value.strip().strip('"').lower()
                if charset not in ("utf-8", "utf8"):
                    raise errors.UnsupportedMediaTypeError(
                        f"charset {value.strip()!r} is not supported; send UTF-8"
                    )

    @overload
    def query_int(self, name: str, minimum: int, maximum: int, default: int) -> int: ...

    @overload
    def query_int(
        self, name: str, minimum: int, maximum: int, default: None = None
    ) -> int | None: ...

    def query_int(
        self, name: str, minimum: int, maximum: int, default: int | None = None
    ) -> int | None:
        """Return the integer query parameter ``name``, or ``default`` when it is absent."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        if not raw:
            raise errors.BadRequestError(f"query parameter {name!r} is empty")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 20:
            raise errors.BadRequestError(
                f"query parameter {name!r} must be an integer from {minimum} to {maximum},"
                f" not {raw!r}"
            )
        value = int(raw)
        if not minimum <= value <= maximum:
            raise errors.BadRequestError(
                f"query parameter {name!r} must be from {minimum} to {maximum}, not {value}"
            )
        return value

    def require_token(self, token: str) -> None:
        """Raise UnauthorizedError unless the request carries the node's API token."""
        presented = None
        authorization = self.request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer":
                presented = credentials.strip()
        if presented is None:
            presented = self.request.headers.get("X-Api-Token")
        if presented is None:
            raise errors.UnauthorizedError(
                "missing API token; send 'Authorization: Bearer <token>'"
            )
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise errors.UnauthorizedError("invalid API token")

    # -- responses --------------------------------------------------------------------

    def write_json(self, value: Any, status: int = 200, compress: bool = False) -> None:
        """Send ``value`` as JSON; with ``compress``, gzip it for clients that accept it."""
        self.set_status(status)
        body = dump_json(value)
        if compress:
            self.set_header("Vary", "Accept-Encoding")
            accepted = self.request.headers.get("Accept-Encoding", "")
            if "gzip" in accepted.lower():
                self.set_header("Content-Encoding", "gzip")
                body = gzip.compress(body, compresslevel=GZIP_LEVEL)
        self.finish(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, errors.SevenTweetsError):
            status_code = status_of(exc)
            message = exc.message
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status_code == 405:
            message = (
                f"method {self.request.method} is not allowed on {self.request.path}"
            )
        elif status_code < 500:
            message = HTTPStatus(status_code).phrase.lower()
        else:
            message = "internal server error; the node logged the details"
        self.set_status(status_code)
        self.set_header("Content-Type", JSON_CONTENT_TYPE)
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.clear_header("Location")
        self.clear_header("Link")
        body: dict[str, Any] = {"error": message, "status": status_code}
        body.update(self.error_extra_fields(status_code))
        self.finish(dump_json(body))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """Return the methods this route implements, for the Allow header of a 405.

        HEAD is allowed exactly where GET is.
        """
        methods = [
            method
            for method in cls.SUPPORTED_METHODS
            if getattr(cls, method.lower(), None)
            is not getattr(tornado.web.RequestHandler, method.lower(), None)
        ]
        if "GET" not in methods:
            methods.remove("HEAD")
        return methods

    async def head(self, *args: str) -> None:
        """Run GET for a HEAD request, so it gets GET's status and headers; Tornado
        drops the body."""
        if "GET" not in self.allowed_methods():
            raise tornado.web.HTTPError(405)
        response = self.get(*args)
        if response is not None:
            await response

    def error_extra_fields(self, status_code: int) -> dict[str, Any]:
        """Fields that a route adds to its error body; none by default."""
        return {}

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, errors.SevenTweetsError):
            status = status_of(value)
            # Client mistakes and peer faults are expected: one line, no traceback.
            level = logging.WARNING if status < 500 else logging.INFO
            log.log(
                level,
                "request failed status=%s method=%s path=%s error=%s",
                status,
                self.request.method,
                self.request.path,
                value.message,
            )
            return
        super().log_exception(typ, value, tb)

    def _leave_in_flight(self) -> None:
        # Called from both on_finish and on_connection_close; counts the request once.
        if self._in_flight is not None:
            self._in_flight.body_ended(self)
            self._in_flight.leave()
            self._in_flight = None

    def on_connection_close(self) -> None:
        # A client that disconnects mid-body never gets on_finish.
        self._leave_in_flight()

    def on_finish(self) -> None:
        self._leave_in_flight()
        self.metrics.observe_request(
            self.route,
            self.request.method or "",
            self.get_status(),
            time.perf_counter() - self._started,
        )


class NotFoundHandler(JsonHandler):
    """Return a JSON 404 for every path that no route matches."""

    route = "not_found"

    def prepare(self) -> None:
        raise errors.NotFoundError(f"no route matches {self.request.path}")
