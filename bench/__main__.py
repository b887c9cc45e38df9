"""``python -m bench``: measure, then write docs/benchmarks.md and docs/benchmarks/*.png.

Options: ``--skip-make-test`` leaves out the (slowest) `make test` timing;
``--skip-localstage`` the figures measured on a booted localstage (bench/localstage.py);
``--skip-handler-code`` those of the handler code driven in this process
(bench/event_sourcing.py, bench/recursive_processor.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import cold_start, static
from bench.figures import Figure
from bench.report import render

ROOT = Path(__file__).resolve().parents[1]
#: `make bench` should finish within this (issue 9). The sections run in order of
#: bounded cost first: the demo gets what is left before the localstage section, and
#: the fan-out sizes, last, what is left after it; either is reported as skipped when
#: too little is (docs/benchmarks/notes.md, "The bench's budget").
BENCH_BUDGET_S = 600.0
#: Least time worth starting the demo with (it takes about a minute on 2 cores).
DEMO_MIN_S = 60.0


def _localstage_section(started: float, step: Callable[[str], None]) -> list[Figure]:
    """The demo, then the figures measured on one booted stage ``local``."""
    from bench.localstage import DEMO_BUDGET_S, demo_figure, demo_skipped, localstage_figures

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as demo_dir:
        # The demo before the localstage section: its cost is bounded (about a minute),
        # while the section ends with the fan-out sizes, which take what is left.
        left = BENCH_BUDGET_S - (time.perf_counter() - started)
        if left < DEMO_MIN_S:
            step(f"`make demo` skipped: {left:.0f} s left of the bench's {BENCH_BUDGET_S:g} s")
            figures.append(demo_skipped(f"{left:.0f} s left of the bench's {BENCH_BUDGET_S:g} s"))
        else:
            budget = min(DEMO_BUDGET_S, left)
            step(f"`make demo` wall time (budget {budget:.0f} s)")
            figures.append(demo_figure(Path(demo_dir), budget_s=budget))
        # The demo synthesized stage local through the CLI as the section would (same
        # app, same cdk.json): the section boots from that assembly, and its time goes to
        # the fan-out sizes instead. Without one (no demo, or stopped in its synth) the
        # section synthesizes its own.
        demo_assembly = Path(demo_dir) / "cdk.out" / "assembly-local"
        reused = demo_assembly if (demo_assembly / "manifest.json").is_file() else None
        step(
            "localstage: boot stage local once"
            + (" (the demo's assembly)" if reused else "")
            + "; requests per operation, schedules, API fuzzing, fan-out scaling "
            "(with what is left)"
        )
        deadline = time.monotonic() + BENCH_BUDGET_S - (time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as workdir:
            figures += localstage_figures(
                workdir=Path(workdir),
                assembly_dir=reused,
                log=lambda line: print(line, flush=True),
                deadline=deadline,
            )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--skip-make-test", action="store_true")
    parser.add_argument(
        "--skip-localstage",
        action="store_true",
        help="leave out the figures measured on a booted localstage (requests, scaling, boot)",
    )
    parser.add_argument(
        "--skip-handler-code",
        action="store_true",
        help="leave out the scaling figures of handler code driven in-process (event "
        "sourcing history, recursive processor object sizes)",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    figures: list[Figure] = []

    def step(title: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {title}", flush=True)

    with tempfile.TemporaryDirectory() as out:
        step("synth: empty app (floor) vs whole app")
        figures += static.synth_figures(Path(out))
        if not args.skip_make_test:
            step("make test")
            figures.append(static.make_test_figure())
        functions = static.synthesized_functions(Path(out) / f"assembly-{static.SYNTH_STAGE}")
        step(f"cold start proxy for {len(functions)} functions")
        figures += cold_start.cold_start_figures(functions)
        step("asset sizes")
        figures += static.asset_figures(functions)

    # A fork that removed a pattern has no figures for it (the folder is what is checked).
    if not args.skip_handler_code and (ROOT / "patterns" / "event_sourcing").is_dir():
        from bench.event_sourcing import BUDGET_S as EVENT_SOURCING_BUDGET_S
        from bench.event_sourcing import event_sourcing_figures

        step(f"event sourcing vs history length (budget {EVENT_SOURCING_BUDGET_S:g} s)")
        figures += event_sourcing_figures(log=lambda line: print(line, flush=True))
    if not args.skip_handler_code and (ROOT / "patterns" / "recursive_processor").is_dir():
        from bench.recursive_processor import BUDGET_S as RECURSIVE_PROCESSOR_BUDGET_S
        from bench.recursive_processor import recursive_processor_figures

        step(f"recursive processor vs object size (budget {RECURSIVE_PROCESSOR_BUDGET_S:g} s)")
        figures += recursive_processor_figures(log=lambda line: print(line, flush=True))

    if not args.skip_localstage:
        figures += _localstage_section(started, step)

    render(
        figures,
        root=ROOT,
        doc=ROOT / "docs" / "benchmarks.md",
        plot_dir=ROOT / "docs" / "benchmarks",
    )
    short = [figure for figure in figures if figure.verdict == "short"]
    unmeasured = [figure for figure in figures if not figure.measured]
    step(
        f"wrote docs/benchmarks.md: {len(figures)} figures, {len(short)} short of target, "
        f"{len(unmeasured)} not measured"
    )
    for figure in short:
        print(f"  short: {figure.name} = {figure.value:.3g} {figure.unit} ({figure.target})")
    for figure in unmeasured:
        print(f"  not measured: {figure.name} ({figure.note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
