"""`lethe` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lethe", description="Lethe: an inference-time unlearning gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the model behind the OpenAI-compatible API")
    serve.add_argument("--config", help="YAML settings file (see configs/default.yaml)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    commands.add_parser("eval", help="unlearning evaluation against a live gateway (see lethe eval -h)",
                        add_help=False, prefix_chars="\0")  # every argument goes to gateway.evaluation
    args, rest = parser.parse_known_args(argv)
    if args.command != "eval" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights never come from a hub at run time
    if args.command == "serve":
        return _serve(args)
    if args.command == "eval":
        from .evaluation.cli import main as evaluate

        return evaluate(rest)
    return 2


def _serve(args) -> int:
    import uvicorn

    from .app import create_app
    from .config import Settings
    from .selfcheck import refusal

    settings = Settings.load(args.config, host=args.host, port=args.port)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not settings.admin_key:
        logging.getLogger("lethe").warning("LETHE_ADMIN_KEY is not set: tenants cannot be created")
    reason = refusal(settings)
    if reason:
        logging.getLogger("lethe").critical("refusing to start: %s", reason)
        return 2
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
    return 1 if getattr(app.state, "status", None) == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
