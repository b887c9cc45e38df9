"""The e2e target: stage ``local`` on localstage (synthesized and booted once), or a
deployed stage with ``--target aws --stage NAME``.

Tests use only the ``target`` fixture (:class:`localstage.target.Target`), so the
same tests run on localstage and against a stage deployed to AWS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from localstage.delivery import DeliveryPolicy
from localstage.target import LocalTarget, Target
from localstage.testing import booted_stage

from tests.support.e2e_target import DEPLOYED_TARGET, session_assembly


@pytest.fixture(scope="session")
def local_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stage ``local`` for this session: :func:`tests.support.e2e_target.session_assembly`."""
    base = tmp_path_factory.getbasetemp()
    # Not pytest-xdist's worker_id fixture: the suite also runs with -p no:xdist.
    return session_assembly(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With ``--delivery`` (``make test`` gives both modes) every test runs once per mode,
    each mode on a stage of its own: ``test_x[once]``, ``test_x[duplicate]``.

    A test marked ``api_only`` makes synchronous API calls only (no event source
    delivers anything it checks), so the delivery mode cannot change its outcome: it
    runs on the first mode's stage alone. A test marked ``load`` (many events through
    a path the pattern's small tests also take) runs on one mode's stage alone: the
    ``duplicate`` mode's when it is given (every event delivered twice is the stricter
    case), else the last one's; running it once more with single delivery proved nothing new
    and cost about 25 s of ``make test``'s CPU."""
    modes = list(dict.fromkeys(metafunc.config.getoption("delivery") or []))
    if modes and "delivery" in metafunc.fixturenames:
        if metafunc.definition.get_closest_marker("api_only") is not None:
            modes = modes[:1]
        elif metafunc.definition.get_closest_marker("load") is not None:
            modes = ["duplicate"] if "duplicate" in modes else modes[-1:]
        metafunc.parametrize("delivery", modes, indirect=True, scope="session")


@pytest.fixture(scope="session")
def delivery(request: pytest.FixtureRequest) -> str | None:
    """The stage's delivery mode: ``--delivery``'s, or None (``$LOCALSTAGE_DELIVERY``)."""
    return getattr(request, "param", None)


@pytest.fixture(scope="session")
def target(
    pytestconfig: pytest.Config,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    delivery: str | None,
) -> Iterator[Target]:
    deployed = pytestconfig.stash[DEPLOYED_TARGET]
    if deployed is not None:
        # Observers of an earlier run that was killed before it could remove them.
        from localstage.deployed import STALE_OBSERVER_SECONDS

        deployed.sweep_observers(older_than=STALE_OBSERVER_SECONDS)
        yield deployed
        return
    # Synthesized only for a local run: a deployed stage needs no assembly.
    assembly: Path = request.getfixturevalue("local_assembly")
    workdir = tmp_path_factory.mktemp(f"localstage-{delivery}" if delivery else "localstage")
    # The "bad day" run: every event twice, and DynamoDB transactions cancelled for a
    # TransactionConflict (the first attempt of every third), as concurrent ones are on AWS.
    # (--delivery duplicate, or $LOCALSTAGE_DELIVERY=duplicate without --delivery.)
    contention = "conflicts" if DeliveryPolicy.resolve(delivery).duplicates else None
    with booted_stage(workdir, assembly, delivery=delivery, contention=contention) as stage:
        yield LocalTarget(stage)
