"""`python3 -m hpcstack.exporter --port 9341 --interval 30`: serve Slurm metrics over HTTP."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence

from prometheus_client import REGISTRY, start_http_server

from .collector import SlurmCollector, subprocess_runner

log = logging.getLogger("hpcstack.exporter")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m hpcstack.exporter", description=__doc__)
    p.add_argument("--port", type=int, default=9341, help="HTTP port (default 9341)")
    p.add_argument("--address", default="0.0.0.0", help="listen address (default all)")
    p.add_argument(
        "--interval",
        type=float,
        default=30.0,
        help="seconds a collection is reused before Slurm is asked again (default 30)",
    )
    p.add_argument("--command-timeout", type=float, default=20.0, help="seconds per Slurm command")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    collector = SlurmCollector(subprocess_runner(args.command_timeout), max_age=args.interval)
    REGISTRY.register(collector)
    start_http_server(args.port, addr=args.address)
    log.info(
        "serving Slurm metrics on %s:%d, collection reused for %gs",
        args.address,
        args.port,
        args.interval,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
