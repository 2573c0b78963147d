"""``python -m aggregator.sandbox``: serve a scenario until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from aggregator.sandbox.core import Sandbox
from aggregator.sandbox.scenarios import bench_accounts, demo_accounts
from aggregator.sandbox.tables import account_tables


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m aggregator.sandbox",
        description="Serve fake exchange balances on 127.0.0.1 for the aggregator.",
    )
    parser.add_argument("--scenario", choices=("demo", "bench"), default="demo")
    parser.add_argument("--accounts", type=int, default=1000, help="bench: how many accounts")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--drift-every", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config-out", type=Path, default=None, metavar="PATH")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    accounts = demo_accounts() if args.scenario == "demo" else bench_accounts(args.accounts)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    # Installed before start, so a signal right after the JSON line is never lost.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sandbox = Sandbox(
        accounts, latency=args.latency, drift_every=args.drift_every, seed=args.seed
    ).start()
    try:
        if args.config_out is not None:
            args.config_out.write_text(account_tables(sandbox, accounts), encoding="utf-8")
        print(json.dumps({"url": sandbox.url, "accounts": len(accounts)}), flush=True)
        # wait() with a timeout lets the main thread run the signal handler promptly.
        while not done.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
