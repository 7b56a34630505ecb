"""`devin-exporter`: parse the command line, then hand over to `exporter.main`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_args

from exporter import __version__
from exporter.backfill.steps import (
    DEFAULT_STEP_SECONDS,
    Command,
    Steps,
    parse_label,
    parse_step,
    parse_until,
)
from exporter.config import (
    ConfigError,
    LogSettings,
    Settings,
    check_telemetry_path,
    config_path_from_env,
    load_settings,
    parse_listen_address,
)
from exporter.durations import parse_duration
from exporter.polling.plan import explain, request_plan
from exporter.sharding import parse_shard

EXIT_CONFIG = 2

# The flags that shape the settings, as (dest, config key): each overrides the config.
_OVERRIDES = (
    ("listen_address", "web.listen_address"),
    ("telemetry_path", "web.telemetry_path"),
    ("web_config_file", "web.config_file"),
    ("log_level", "log.level"),
    ("log_format", "log.format"),
)


def _checked(check: Callable[[str], Any]) -> Callable[[str], str]:
    """An argparse type that runs a config check, so a bad flag is a usage error."""

    def convert(text: str) -> str:
        try:
            check(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text

    return convert


def _shard(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _global_flags(parser: argparse.ArgumentParser, *, on_command: bool) -> None:
    """The flags taken before or after the command.

    The main parser gives them their defaults; a command's parser takes them with no
    default (SUPPRESS), so that a flag given before the command is not overwritten by the
    command's default (argparse copies every default of a subparser over the parent's).
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if on_command else value

    levels = get_args(LogSettings.model_fields["level"].annotation)
    formats = get_args(LogSettings.model_fields["format"].annotation)
    flags = parser.add_argument_group("global flags (before or after the command)")
    flags.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=default(None),
        help="YAML config file (default: $DEVIN_EXPORTER_CONFIG)",
    )
    flags.add_argument(
        "--web.listen-address",
        dest="listen_address",
        type=_checked(parse_listen_address),
        metavar="ADDR",
        default=default(None),
        help="address to serve on (overrides web.listen_address; default :9877, "
        "and 127.0.0.1:9877 with --demo)",
    )
    flags.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        type=_checked(check_telemetry_path),
        metavar="PATH",
        default=default(None),
        help="path to serve the metrics on (overrides web.telemetry_path; default /metrics)",
    )
    flags.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        metavar="PATH",
        default=default(None),
        help="exporter-toolkit web configuration: TLS and basic auth (overrides web.config_file)",
    )
    flags.add_argument(
        "--log.level",
        dest="log_level",
        choices=levels,
        default=default(None),
        help=f"overrides log.level: {', '.join(levels)} (default info)",
    )
    flags.add_argument(
        "--log.format",
        dest="log_format",
        choices=formats,
        default=default(None),
        help=f"overrides log.format: {' or '.join(formats)} (default logfmt)",
    )
    flags.add_argument(
        "--shard",
        type=_shard,
        metavar="N/M",
        default=default(None),
        help="poll only shard N (0-based) of M: the orgs whose stable hash falls in it",
    )
    flags.add_argument(
        "--demo",
        action="store_true",
        default=default(False),
        help="start the built-in demo Devin API (three organisations) and poll it",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devin-exporter",
        description="Prometheus exporter for Devin's session metrics.",
    )
    parser.add_argument("--version", action="version", version=f"devin-exporter {__version__}")
    _global_flags(parser, on_command=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check-config", help="validate the config, report every error, and exit (2 if invalid)"
    )
    _global_flags(check, on_command=True)
    once = commands.add_parser(
        "once", help="poll every target once, print the exposition, exit 1 if any failed"
    )
    _global_flags(once, on_command=True)
    once.add_argument(
        "--explain",
        action="store_true",
        help="print the request plan of one cycle (endpoint, org, windows, requests); poll nothing",
    )
    _backfill_parser(commands)
    demo = commands.add_parser("demo-api", help="run the demo Devin API alone")
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 for any)")
    demo.add_argument("--orgs", type=int, default=3, help="number of organisations (default 3)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the synthetic data")
    demo.add_argument("--faults", type=Path, metavar="PATH", help="YAML fault plan")
    return parser


def _backfill_parser(commands: Any) -> None:
    backfill = commands.add_parser(
        "backfill",
        help="write past steps of every Devin series as OpenMetrics, for promtool tsdb "
        "create-blocks-from openmetrics; exit 1 if any step was left out",
    )
    _global_flags(backfill, on_command=True)
    backfill.add_argument(
        "--since",
        type=_checked(parse_duration),
        metavar="DURATION",
        help="how far back from --until, such as 7d or 90d (required unless --resume)",
    )
    backfill.add_argument(
        "--until",
        type=_checked(parse_until),
        metavar="RFC3339",
        help="the last moment, such as 2026-11-20T00:00:00Z (default: now)",
    )
    backfill.add_argument(
        "--step",
        type=_checked(parse_step),
        metavar="DURATION",
        help="one sample per series every step, aligned to the Unix epoch (default 1h)",
    )
    backfill.add_argument(
        "--output", type=Path, metavar="PATH", required=True, help="the OpenMetrics file to write"
    )
    backfill.add_argument(
        "--explain",
        action="store_true",
        help="print the requests the run would make, per endpoint, and how long; ask nothing",
    )
    backfill.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help="refuse to start a run that needs more than N requests",
    )
    backfill.add_argument(
        "--label",
        type=_checked(parse_label),
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add this label to every series, such as job=devin-exporter and "
        "instance=HOST:PORT as Prometheus scrapes the exporter (repeatable)",
    )
    backfill.add_argument(
        "--resume",
        action="store_true",
        help="continue a run that was interrupted or left steps out, from PATH and its journal",
    )


def _backfill_command(args: argparse.Namespace) -> Command:
    steps = None
    if args.since is not None:
        until = parse_until(args.until) if args.until is not None else time.time()
        step = parse_step(args.step) if args.step is not None else DEFAULT_STEP_SECONDS
        steps = Steps(parse_duration(args.since), until, step)
    labels = tuple(sorted(dict(parse_label(text) for text in args.label).items()))
    return Command(steps, args.output, args.resume, args.explain, args.max_requests, labels)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, parsed; exits with status 2 and the usage on a bad flag."""
    return _parser().parse_args(argv)


def overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line sets, nested as the config file nests them."""
    overrides: dict[str, Any] = {}
    for dest, key in _OVERRIDES:
        value = getattr(args, dest)
        if value is not None:
            section, name = key.split(".")
            overrides.setdefault(section, {})[name] = value
    if args.shard is not None:
        index, count = args.shard
        overrides["sharding"] = {"index": index, "count": count}
    return overrides


def _usage_error(message: str) -> int:
    print(f"devin-exporter: {message}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    from exporter import main as app  # after argument parsing: --help stays fast
    from exporter.billing import explain_billing

    args = parse_args(argv)
    if args.command == "demo-api":
        ignored = [key for dest, key in _OVERRIDES if getattr(args, dest) is not None]
        if args.config or args.shard or args.demo or ignored:
            return _usage_error("demo-api takes only its own flags (see demo-api --help)")
        from exporter.demo_mode import run_demo_api

        return asyncio.run(run_demo_api(args.host, args.port, args.orgs, args.seed, args.faults))
    if args.demo and args.command == "check-config":
        return _usage_error("check-config checks a config file; --demo needs none")
    if args.demo and args.command == "backfill":
        return _usage_error("backfill takes a config; run the demo API with demo-api instead")
    if args.demo and getattr(args, "explain", False):
        return _usage_error("--explain takes a config; --demo polls the built-in demo API")

    path = config_path_from_env(args.config)
    overrides = overrides_of(args)
    try:
        if args.demo:
            from exporter.demo_mode import run_with_demo

            return asyncio.run(run_with_demo(path, overrides, once=args.command == "once"))
        settings = checked_settings(path, overrides)
    except ConfigError as err:
        print(f"devin-exporter: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(f"{path or 'environment'}: configuration is valid")
        for line in explain_billing(settings):
            print(f"  {line}")
        return 0
    if args.command == "once" and args.explain:
        print(explain(request_plan(settings)), end="")
        return 0
    if args.command == "once":
        return asyncio.run(app.run_once(settings))
    if args.command == "backfill":
        if args.since is None and not args.resume:
            return _usage_error("backfill needs --since DURATION (or --resume)")
        if args.until is not None and parse_until(args.until) > time.time():
            return _usage_error("backfill --until is in the future: Devin has no answer yet")
        return asyncio.run(app.run_backfill(settings, _backfill_command(args)))
    reload = (lambda: checked_settings(path, overrides)) if path is not None else None
    return asyncio.run(app.run(settings, reload))


def checked_settings(path: Path | None, overrides: dict[str, Any]) -> Settings:
    """The settings, with the web configuration file (TLS files included) checked too."""
    settings = load_settings(path, **overrides)
    if settings.web.config_file is not None:
        # Only with a web config file: bcrypt and the TLS machinery load for it alone.
        from exporter.web.security import WebSecurity
        from exporter.web.webconfig import WebConfigError

        try:
            WebSecurity.from_file(settings.web.config_file)
        except WebConfigError as err:
            raise ConfigError(str(err)) from None
    return settings


if __name__ == "__main__":
    sys.exit(main())
