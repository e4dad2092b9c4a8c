"""The ``seventweets`` command: parse options, set up logging, run the node."""

from __future__ import annotations

import asyncio
import logging
import sys

from seventweets.config import ConfigError, parse_config
from seventweets.node import run


def main() -> None:
    try:
        config = parse_config()
    except ConfigError as exc:
        print(f"seventweets: error: {exc}", file=sys.stderr)
        sys.exit(2)

    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(asyncio.run(run(config)))
