"""Domain errors that services raise and the base handler turns into HTTP responses.

Every error carries a message that names what failed and on which value, and that
message becomes the ``error`` field of the JSON error body. Only ``handlers.base`` maps
these classes to status codes::

    SevenTweetsError
    ├── BadRequestError            400  a body, query parameter or header cannot be parsed
    ├── UnauthorizedError          401  a write without valid credentials
    ├── NotFoundError              404  no such tweet, route or member
    ├── ConflictError              409  an idempotency key reused, a name live elsewhere
    ├── PayloadTooLargeError       413  a body above the configured maximum
    ├── UnsupportedMediaTypeError  415  a body that is not JSON in UTF-8
    ├── ValidationError            422  well-formed JSON that breaks a rule
    ├── PeerError                  502  a peer node needed for the request failed
    ├── PeerTimeoutError           504  a peer node did not answer in time
    └── DatabaseUnavailableError   503  the database cannot be reached
"""


class SevenTweetsError(Exception):
    """Base class of every error a client may see; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(SevenTweetsError):
    pass


class UnauthorizedError(SevenTweetsError):
    pass


class NotFoundError(SevenTweetsError):
    pass


class ConflictError(SevenTweetsError):
    pass


class PayloadTooLargeError(SevenTweetsError):
    pass


class UnsupportedMediaTypeError(SevenTweetsError):
    pass


class ValidationError(SevenTweetsError):
    pass


class PeerError(SevenTweetsError):
    pass


class PeerTimeoutError(PeerError):
    pass


class DatabaseUnavailableError(SevenTweetsError):
    pass
