"""A bare Tornado server: the baseline that the node's throughput is divided by.

It serves the node's tweet routes with a small constant JSON body and does nothing else
(no database, no validation, no metrics). So the benchmark can send it exactly the
requests it sends the node, with the same wrk script. Its handlers are plain
``RequestHandler`` subclasses with Tornado's defaults, Etag included.

Run: ``python bench/bare_server.py --port 8100``. It prints ``ready port=N`` to standard
error once it listens and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import tornado.web

BODY = {"status": "ok", "server": "bare"}


class PingHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write(BODY)


class TweetListHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write(BODY)

    def post(self) -> None:
        # Tornado reads the body before this runs, as for any handler that does not
        # stream it. The baseline does not parse it.
        self.set_status(201)
        self.write(BODY)


class TweetHandler(tornado.web.RequestHandler):
    def get(self, tweet_id: str) -> None:
        self.write(BODY)


def make_app() -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/ping", PingHandler),
            (r"/tweets/?", TweetListHandler),
            (r"/tweets/([^/]+)/?", TweetHandler),
        ]
    )


async def serve(host: str, port: int) -> None:
    server = make_app().listen(port, host)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    print(f"ready port={port}", file=sys.stderr, flush=True)
    await stopping.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8100, help="TCP port to listen on")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
