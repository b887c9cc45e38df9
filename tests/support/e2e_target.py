"""Which stage ``tests/e2e`` runs against: ``--target local`` (default) or ``--target aws``.

The options are registered in ``tests/conftest.py`` (pytest reads ``pytest_addoption``
only from the rootdir's and the initial conftests). With ``--target local`` nothing
here builds a boto3 session, so nothing can reach AWS.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from localstage.deployed import DeployedTarget

#: The deployed target of this run, or None for the local stage.
DEPLOYED_TARGET = pytest.StashKey["DeployedTarget | None"]()
TARGETS = ("local", "aws")
#: localstage's delivery modes (:mod:`localstage.delivery`), without importing it here.
DELIVERY_MODES = ("once", "duplicate")


def add_target_options(parser: pytest.Parser) -> None:
    """Register ``--target``, ``--stage``, ``--delivery`` and ``--wait-scale``."""
    group = parser.getgroup("e2e target", "where tests/e2e runs")
    group.addoption(
        "--target",
        choices=TARGETS,
        default="local",
        help="local: boot stage `local` on localstage (default); aws: a deployed stage",
    )
    group.addoption(
        "--stage",
        default=None,
        metavar="NAME",
        help="the deployed stage for --target aws, e.g. pr-42 (stacks NAME-<Pattern>)",
    )
    group.addoption(
        "--delivery",
        action="append",
        choices=DELIVERY_MODES,
        default=None,
        metavar="MODE",
        help="--target local: localstage's delivery mode, once or duplicate (every event of "
        "every source delivered twice); repeat it to run the suite once per mode "
        "(make test does); default $LOCALSTAGE_DELIVERY, else once",
    )
    group.addoption(
        "--wait-scale",
        type=float,
        default=None,
        metavar="FACTOR",
        help="--target aws: multiply e2e timeouts by FACTOR (default 10: AWS runs at real time)",
    )


def deployed_target_from_options(
    target: str, stage: str | None, wait_scale: float | None
) -> DeployedTarget | None:
    """The deployed target the options ask for, or None for the local stage.

    Raises
    ------
    pytest.UsageError
        With one line, when the options do not fit together or AWS cannot be used
        (no credentials, no region, a bad stage name). Nothing is sent to AWS here.
    """
    if target == "local":
        if stage is not None or wait_scale is not None:
            raise pytest.UsageError("--stage and --wait-scale need --target aws")
        return None
    if target != "aws":
        raise pytest.UsageError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    if not stage:
        raise pytest.UsageError("--target aws needs --stage NAME (e.g. --stage pr-42)")
    # Imported only now: a local run never loads boto3 sessions for AWS.
    from localstage.deployed import DEFAULT_WAIT_SCALE, DeployedTarget, TargetConfigurationError

    try:
        return DeployedTarget.from_environment(
            stage, wait_scale=DEFAULT_WAIT_SCALE if wait_scale is None else wait_scale
        )
    except TargetConfigurationError as error:
        raise pytest.UsageError(str(error)) from None


def configure_target(config: pytest.Config) -> None:
    """Build the run's target from its options (``pytest_configure``)."""
    if config.getoption("target") == "aws" and "duplicate" in (config.getoption("delivery") or []):
        raise pytest.UsageError(
            "--delivery duplicate is a localstage mode: it needs --target local"
        )
    config.stash[DEPLOYED_TARGET] = deployed_target_from_options(
        config.getoption("target"), config.getoption("stage"), config.getoption("wait_scale")
    )


def session_assembly(shared: Path) -> Path:
    """Stage ``local`` synthesized once per test session, whatever the number of workers;
    or the already synthesized one ``$LOCALSTAGE_ASSEMBLY`` names, with no synth.

    Through the CDK CLI, as ``make synth`` does: this is the test run's proof that the
    CLI, cdk.json's app command and cdk-nag's synth-time checks work together. CDK's
    built-in template validation is off for it (half of the synth's CPU): the infra suite
    runs it on the same app in-process, for an ephemeral and a persistent stage
    (``tests/infra/test_compliance.py``).
    pytest-xdist workers share ``shared`` (the parent of their base temporary folders);
    the first worker to take the lock synthesizes there and the others reuse its assembly.

    A named assembly is used as it is, templates and function code alike (the synth's
    copies in ``cdk.out/asset.*``): a handler changed since is not what runs.

    Raises
    ------
    AssemblyError
        When ``$LOCALSTAGE_ASSEMBLY`` names a folder without a ``manifest.json``.
    """
    from localstage.assembly import DEFAULT_STAGE, AssemblyError, synthesize_with_cli
    from localstage.testing import ASSEMBLY_VARIABLE

    # Checked here, not only by booted_stage: the suite always hands that an assembly,
    # so the variable was never read and every run synthesized (about 30-45 s).
    preset = os.environ.get(ASSEMBLY_VARIABLE)
    if preset:
        # Absolute, so it names the same folder whatever a test later runs in.
        named = Path(preset).resolve()
        if not (named / "manifest.json").is_file():
            raise AssemblyError(
                f"{ASSEMBLY_VARIABLE}={preset}: {named} has no manifest.json; name a "
                f"synthesized stage's folder, e.g. .localstage/cdk.out/assembly-{DEFAULT_STAGE}"
            )
        return named
    outdir = shared / "e2e-cdk.out"
    with (shared / "e2e-synth.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assembly = outdir / f"assembly-{DEFAULT_STAGE}"
        if not (assembly / "manifest.json").is_file():
            assembly = synthesize_with_cli(DEFAULT_STAGE, outdir, validate_templates=False)
    return assembly
