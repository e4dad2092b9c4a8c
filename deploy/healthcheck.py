#!/usr/bin/env python3
"""Exit 0 when the SevenTweets node in this container returns 200 for GET /health.

The container image installs this file as ``seventweets-healthcheck`` for its HEALTHCHECK,
and compose calls it too. It reads the node's own SEVENTWEETS_HOST and SEVENTWEETS_PORT, so
it needs no arguments, and it uses only the standard library, because slim images have no
curl. Any other status (503 while the database is down), a refused connection or a timeout
exits 1 with one line on standard error, which ``docker inspect`` shows.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

# Seconds to wait for the response. The image's HEALTHCHECK --timeout must be longer.
TIMEOUT_SECONDS = 3.0
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def health_url() -> str:
    """Return the URL of the local node's health endpoint."""
    host = os.environ.get("SEVENTWEETS_HOST", "127.0.0.1")
    port = os.environ.get("SEVENTWEETS_PORT", "8000")
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/health"


def main() -> int:
    url = health_url()
    # An empty ProxyHandler ignores http_proxy, which would send a loopback request away.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        print(f"unhealthy: GET {url} failed: {error}", file=sys.stderr)
        return 1

    if status != 200:
        print(f"unhealthy: GET {url} returned {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
