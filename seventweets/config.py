"""Options of a node, read from the command line and from SEVENTWEETS_* variables."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from seventweets.handlers.base import DEFAULT_MAX_BODY_SIZE
from seventweets.peers import DEFAULT_PEER_TIMEOUT

NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,32}$")


class ConfigError(Exception):
    """An option is invalid; the message names the option and the value."""


@dataclass(frozen=True)
class NodeConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 8000
    address: str | None = None
    seeds: tuple[str, ...] = ()
    db: str | None = None
    data_dir: Path | None = None
    token: str | None = None
    cluster_secret: str | None = None
    gossip_interval: float = 1.0
    peer_timeout: float = DEFAULT_PEER_TIMEOUT
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    log_level: str = "INFO"


def check_url(value: str, option: str) -> str:
    """Return ``value`` without a trailing slash when it is an http(s) URL with a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{option} {value!r} is not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise ConfigError(f"{option} {value!r} has an invalid port") from None
    return value.rstrip("/")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as every start-up failure of the node is reported.
        self.exit(2, f"seventweets: error: {message}\n")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    def env(name: str, default: str | None = None) -> str | None:
        return environ.get(f"SEVENTWEETS_{name}", default)

    parser = _Parser(
        prog="seventweets",
        description="Run one node of a SevenTweets network.",
        epilog="Every option can also be set by the SEVENTWEETS_* variable named in its help.",
    )
    parser.add_argument(
        "--name", default=env("NAME"),
        help="node name, unique in the network: 1-32 of a-z 0-9 _ - (SEVENTWEETS_NAME; required)",
    )  # fmt: skip
    parser.add_argument(
        "--host", default=env("HOST", "127.0.0.1"),
        help="interface to listen on (SEVENTWEETS_HOST; default 127.0.0.1)",
    )  # fmt: skip
    parser.add_argument(
        "--port", default=env("PORT", "8000"),
        help="TCP port to listen on, 0 for any free port (SEVENTWEETS_PORT; default 8000)",
    )  # fmt: skip
    parser.add_argument(
        "--address", default=env("ADDRESS"),
        help="URL other nodes use to reach this one (SEVENTWEETS_ADDRESS; "
        "default http://HOST:PORT)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", action="append", dest="seeds",
        help="URL of a node to join through; repeat for more (SEVENTWEETS_SEEDS, "
        "comma-separated; none starts a new network)",
    )  # fmt: skip
    parser.add_argument(
        "--db", default=env("DB"),
        help="PostgreSQL DSN or URL (SEVENTWEETS_DB; default: an embedded server in "
        "the data directory)",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", default=env("DATA_DIR"),
        help="folder of the embedded database (SEVENTWEETS_DATA_DIR; default "
        "~/.local/share/seventweets/NAME, or /var/lib/seventweets/NAME for root)",
    )  # fmt: skip
    parser.add_argument(
        "--token", default=env("TOKEN"),
        help="API token for tweet writes (SEVENTWEETS_TOKEN; default: a random one, "
        "shown once at start)",
    )  # fmt: skip
    parser.add_argument(
        "--cluster-secret", default=env("CLUSTER_SECRET"),
        help="shared secret that signs node-to-node messages (SEVENTWEETS_CLUSTER_SECRET; "
        "default: none, an open network)",
    )  # fmt: skip
    parser.add_argument(
        "--gossip-interval", default=env("GOSSIP_INTERVAL", "1.0"),
        help="seconds between gossip rounds; the membership timeouts scale with it "
        "(SEVENTWEETS_GOSSIP_INTERVAL; default 1.0)",
    )  # fmt: skip
    parser.add_argument(
        "--peer-timeout", default=env("PEER_TIMEOUT", str(DEFAULT_PEER_TIMEOUT)),
        help="seconds a retweet or network search waits for each peer "
        f"(SEVENTWEETS_PEER_TIMEOUT; default {DEFAULT_PEER_TIMEOUT})",
    )  # fmt: skip
    parser.add_argument(
        "--max-body-size", default=env("MAX_BODY_SIZE", str(DEFAULT_MAX_BODY_SIZE)),
        help="largest request body accepted, in bytes (SEVENTWEETS_MAX_BODY_SIZE; "
        "default 65536)",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default=env("LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="minimum level of the log lines written to standard error (SEVENTWEETS_LOG_LEVEL; "
        "default INFO)",
    )  # fmt: skip
    return parser


def parse_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """Parse options; exit 2 with one line on a syntax error, raise ConfigError otherwise."""
    environ = os.environ if environ is None else environ
    args = build_parser(environ).parse_args(sys.argv[1:] if argv is None else argv)

    if not args.name:
        raise ConfigError("--name is required (or set SEVENTWEETS_NAME)")
    if not NAME_PATTERN.match(args.name):
        raise ConfigError(
            f"--name {args.name!r} must be 1-32 characters of a-z, 0-9, _ and -"
        )

    try:
        port = int(args.port)
    except ValueError:
        raise ConfigError(f"--port {args.port!r} is not an integer") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} must be from 0 to 65535")

    try:
        interval = float(args.gossip_interval)
    except ValueError:
        raise ConfigError(
            f"--gossip-interval {args.gossip_interval!r} is not a number"
        ) from None
    if not 0.01 <= interval <= 3600:
        raise ConfigError(
            f"--gossip-interval {interval} must be from 0.01 to 3600 seconds"
        )

    try:
        peer_timeout = float(args.peer_timeout)
    except ValueError:
        raise ConfigError(
            f"--peer-timeout {args.peer_timeout!r} is not a number"
        ) from None
    if not 0.01 <= peer_timeout <= 600:
        raise ConfigError(
            f"--peer-timeout {peer_timeout} must be from 0.01 to 600 seconds"
        )

    try:
        max_body_size = int(args.max_body_size)
    except ValueError:
        raise ConfigError(
            f"--max-body-size {args.max_body_size!r} is not an integer"
        ) from None
    if max_body_size < 1024:
        raise ConfigError(
            f"--max-body-size {max_body_size} must be at least 1024 bytes"
        )

    if args.seeds:
        raw_seeds = list(args.seeds)
    else:
        raw_seeds = [s.strip() for s in environ.get("SEVENTWEETS_SEEDS", "").split(",")]
    seeds = tuple(check_url(seed, "--seed") for seed in raw_seeds if seed)

    address = check_url(args.address, "--address") if args.address else None

    if args.token is not None and not args.token.strip():
        raise ConfigError("--token must not be empty")
    if args.cluster_secret is not None and not args.cluster_secret:
        raise ConfigError("--cluster-secret must not be empty")

    return NodeConfig(
        name=args.name,
        host=args.host,
        port=port,
        address=address,
        seeds=seeds,
        db=args.db or None,
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else None,
        token=args.token,
        cluster_secret=args.cluster_secret,
        gossip_interval=interval,
        peer_timeout=peer_timeout,
        max_body_size=max_body_size,
        log_level=args.log_level,
    )
