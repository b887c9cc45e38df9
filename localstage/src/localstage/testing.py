"""Booting stage ``local`` for a test suite (``tests/e2e``): once, with a fast clock.

Booting synthesizes the app and starts moto and the functions (seconds), so a suite
boots once and shares the stage; it must stop it when done, so that no poller keeps
running while other suites use moto in-process.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localstage.stage import LocalStage

#: Stage time in tests: a 180 s visibility timeout lasts 2 s.
TEST_CLOCK_SPEED = 90.0
#: Set to an already synthesized assembly (``.localstage/cdk.out/assembly-local``) to
#: skip the synth, e.g. while iterating on tests only: the stage runs that assembly as
#: it is, templates and function code alike (the synth copied each function's code to
#: ``cdk.out/asset.*``), so a changed handler or construct needs a new synth.
ASSEMBLY_VARIABLE = "LOCALSTAGE_ASSEMBLY"


@contextmanager
def booted_stage(
    workdir: Path,
    assembly_dir: Path | None = None,
    *,
    delivery: str | None = None,
    contention: str | None = None,
) -> Iterator[LocalStage]:
    """Stage ``local`` booted in ``workdir``, stopped on exit.

    ``delivery`` is the stage's delivery mode (``once``, ``duplicate``; None reads
    ``$LOCALSTAGE_DELIVERY``, see :mod:`localstage.delivery`), ``contention`` its
    contention mode (``none``, ``conflicts``; None reads ``$LOCALSTAGE_CONTENTION``, see
    :mod:`localstage.contention`).

    ``assembly_dir`` (or ``$LOCALSTAGE_ASSEMBLY``) is an already synthesized stage
    ``local``; without one the stage synthesizes into ``workdir``. The function logs
    stay in ``<workdir>/logs`` for a look after a failure (a pytest temporary folder:
    pytest keeps the last few runs'); an assembly synthesized here is removed.
    """
    assembly = assembly_dir or os.environ.get(ASSEMBLY_VARIABLE)
    stage = LocalStage(
        workdir=workdir,
        assembly_dir=Path(assembly) if assembly else None,
        clock_speed=TEST_CLOCK_SPEED,
        delivery=delivery,
        contention=contention,
    )
    try:
        with stage:
            yield stage
    finally:
        shutil.rmtree(workdir / "cdk.out", ignore_errors=True)
