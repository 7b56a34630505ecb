"""`devin-exporter`: parse the command line, then hand over to `exporter.main`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter import __version__
from exporter.config import ConfigError, Settings, config_path_from_env, load_settings
from exporter.polling.plan import explain, request_plan
from exporter.sharding import parse_shard
from exporter.web.webconfig import WebConfigError, WebSecurity

EXIT_CONFIG = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="YAML config file (default: $DEVIN_EXPORTER_CONFIG)",
    )


def _shard(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devin-exporter",
        description="Prometheus exporter for Devin's session metrics.",
    )
    parser.add_argument("--version", action="version", version=f"devin-exporter {__version__}")
    _common(parser)
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="ADDR",
        help="address to serve /metrics on (overrides web.listen_address; default :9877)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        metavar="PATH",
        help="exporter-toolkit web configuration: TLS and basic auth (overrides web.config_file)",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        metavar="N/M",
        help="poll only shard N (0-based) of M: the orgs whose stable hash falls in it",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the built-in demo Devin API (three organisations) and poll it",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check-config", help="validate the config and exit (2 if invalid)")
    _common(check)
    once = commands.add_parser(
        "once", help="poll every target once, print the exposition, exit 1 if any failed"
    )
    _common(once)
    once.add_argument("--demo", action="store_true", help="poll the built-in demo API")
    once.add_argument(
        "--explain",
        action="store_true",
        help="print the request plan of one cycle (endpoint, org, windows, requests); poll nothing",
    )
    demo = commands.add_parser("demo-api", help="run the demo Devin API alone")
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 for any)")
    demo.add_argument("--orgs", type=int, default=3, help="number of organisations (default 3)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the synthetic data")
    demo.add_argument("--faults", type=Path, metavar="PATH", help="YAML fault plan")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    from exporter import main as app  # after argument parsing: --help stays fast

    args = _parser().parse_args(argv)
    if args.command == "demo-api":
        return asyncio.run(
            app.run_demo_api(args.host, args.port, args.orgs, args.seed, args.faults)
        )

    path = config_path_from_env(args.config)
    overrides: dict[str, object] = {}
    web: dict[str, object] = {}
    if getattr(args, "listen_address", None):
        web["listen_address"] = args.listen_address
    if getattr(args, "web_config_file", None):
        web["config_file"] = args.web_config_file
    if web:
        overrides["web"] = web
    if getattr(args, "shard", None):
        index, count = args.shard
        overrides["sharding"] = {"index": index, "count": count}
    demo = bool(getattr(args, "demo", False)) and args.command != "check-config"
    if demo and getattr(args, "explain", False):
        print(
            "devin-exporter: --explain takes a config; --demo polls the built-in demo API",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        if demo:
            return asyncio.run(app.run_with_demo(path, overrides, once=args.command == "once"))
        settings = checked_settings(path, overrides)
    except ConfigError as err:
        print(f"devin-exporter: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(f"{path or 'environment'}: configuration is valid")
        return 0
    if args.command == "once" and args.explain:
        print(explain(request_plan(settings)), end="")
        return 0
    if args.command == "once":
        return asyncio.run(app.run_once(settings))
    reload = (lambda: checked_settings(path, overrides)) if path is not None else None
    return asyncio.run(app.run(settings, reload))


def checked_settings(path: Path | None, overrides: dict[str, object]) -> Settings:
    """The settings, with the web configuration file (TLS files included) checked too."""
    settings = load_settings(path, **overrides)
    if settings.web.config_file is not None:
        try:
            WebSecurity.from_file(settings.web.config_file)
        except WebConfigError as err:
            raise ConfigError(str(err)) from None
    return settings


if __name__ == "__main__":
    sys.exit(main())
