"""``python -m localstage serve|demo``: run stage ``local`` offline.

serve  synthesize, boot, print API URLs and resource names, stream function logs
       (JSON) to the console and to .localstage/logs/, run until Ctrl-C.
demo   synthesize, boot, run every pattern's scenarios, print a transcript, exit 0
       only if every scenario reached its expected end state.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from localstage.assembly import DEFAULT_STAGE, DEFAULT_WORKDIR
from localstage.scenarios import run_scenarios
from localstage.stage import LocalStage
from localstage.target import LocalTarget

#: The demo's stage time runs this much faster (a 180 s visibility timeout takes 2 s).
DEMO_CLOCK_SPEED = 90.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localstage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["serve", "demo"])
    parser.add_argument("--stage", default=DEFAULT_STAGE, help="stage name (default: local)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--assembly", type=Path, help="use an already synthesized assembly")
    parser.add_argument("--clock-speed", type=float, help="stage time speed-up")
    parser.add_argument("--verbose", action="store_true", help="demo: also print function logs")
    parser.add_argument(
        "--scenarios",
        metavar="GLOB",
        help="demo: the scenario modules, a file glob relative to the app's folder "
        "($LOCALSTAGE_APP_DIR, else the working directory; default: its pyproject.toml "
        "[tool.localstage] scenarios)",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return demo(args)


def _stage(args: argparse.Namespace, *, clock_speed: float, console_logs: bool) -> LocalStage:
    return LocalStage(
        stage_name=args.stage,
        assembly_dir=args.assembly,
        workdir=args.workdir,
        clock_speed=args.clock_speed or clock_speed,
        console_logs=console_logs,
    )


def _booting(args: argparse.Namespace) -> str:
    return "booting" if args.assembly else "synthesizing and booting"


def serve(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"{_booting(args)} stage {args.stage} ...", flush=True)
    with _stage(args, clock_speed=1.0, console_logs=True) as stage:
        print(stage.describe())
        print(
            f"booted in {stage.timings.get('boot', 0):.1f} s. Call the APIs with SigV4 "
            "(any key localstage knows; the admin key is printed below). Ctrl-C stops.",
            flush=True,
        )
        admin = stage.cloud.admin
        assert admin is not None
        print(f"  AWS_ENDPOINT_URL={stage.cloud.endpoint_url}")
        print(f"  AWS_ACCESS_KEY_ID={admin.access_key_id}")
        print(f"  AWS_SECRET_ACCESS_KEY={admin.secret_access_key}")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print("\nstopping ...", flush=True)
    return 0


def demo(args: argparse.Namespace) -> int:
    began = time.monotonic()
    print(f"{_booting(args)} stage {args.stage} ...", flush=True)
    with _stage(args, clock_speed=DEMO_CLOCK_SPEED, console_logs=args.verbose) as stage:
        timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stage.timings.items())
        print(f"stage {args.stage} is up ({timings}); clock x{stage.clock.speed:g}")
        for gateway in stage.gateways:
            print(f"  API {gateway.api.stack_name}: {gateway.url}")
        for warning in stage.warnings:
            print(f"  WARNING {warning}")
        assert stage.assembly is not None
        stacks = [stack.stack_name for stack in stage.assembly.stacks]
        results = run_scenarios(
            LocalTarget(stage), stacks, stream=sys.stdout, scenarios=args.scenarios
        )
    passed = sum(result.passed for result in results)
    print(f"\n{passed}/{len(results)} scenarios passed in {time.monotonic() - began:.1f} s")
    for result in results:
        if not result.passed:
            print(f"  FAILED {result.stack}: {result.name}: {result.error}")
    print(f"function logs: {args.workdir / 'logs'}")
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
