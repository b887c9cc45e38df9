"""The cold-start proxy's floor: ``import boto3`` plus the clients the handler creates.

The handler's clients are found by recording boto3's Session.client/resource in the
probe interpreter; these tests import small stand-in handlers in fresh interpreters.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cold_start import (
    describe_clients,
    floor_seconds,
    heaviest,
    import_seconds,
    library_floor_seconds,
    library_modules,
    probe_env,
    recorded_clients,
)

_HANDLER = """
import boto3
from botocore.config import Config

_CONFIG = Config(connect_timeout=2, retries={"mode": "standard", "max_attempts": 3})
table = boto3.client("dynamodb", config=_CONFIG)
queue = boto3.client("sqs", region_name="eu-west-1")
bucket = boto3.resource("s3")
own = boto3.session.Session().client("events", config=Config(read_timeout=5))


def lazily():
    return boto3.client("scheduler")
"""


def _handler(tmp_path: Path, source: str = _HANDLER) -> dict[str, str]:
    (tmp_path / "stand_in_handler.py").write_text(source)
    return probe_env({}, tmp_path)


def test_the_recorder_lists_each_client_the_import_creates_with_its_arguments(
    tmp_path: Path,
) -> None:
    # GIVEN a handler that creates clients and a resource at import, one on its own
    # session, and one more client only when called
    env = _handler(tmp_path)
    # WHEN its import is recorded
    calls = recorded_clients("stand_in_handler", env)
    # THEN the four import-time calls are listed in order, with their Config options and
    # arguments, the resource as a resource (its inner client not listed again)
    assert [(call["kind"], call["service"], call["session"]) for call in calls] == [
        ("client", "dynamodb", "default"),
        ("client", "sqs", "default"),
        ("resource", "s3", "default"),
        ("client", "events", 0),
    ]
    assert calls[0]["arguments"]["config"] == {
        "__config__": {"connect_timeout": 2, "retries": {"mode": "standard", "max_attempts": 3}}
    }
    assert calls[1]["arguments"] == {"region_name": "eu-west-1"}
    assert calls[3]["arguments"]["config"] == {"__config__": {"read_timeout": 5}}
    assert describe_clients(calls) == (
        "client(dynamodb, config), client(sqs, region_name), resource(s3), "
        "client(events, config) (session 0)"
    )


def test_a_handler_without_clients_has_the_bare_import_boto3_floor(tmp_path: Path) -> None:
    env = _handler(tmp_path, "import boto3\n")
    assert recorded_clients("stand_in_handler", env) == []
    assert describe_clients([]) == "none"


def test_the_floor_replays_the_recorded_clients_in_a_bare_interpreter(tmp_path: Path) -> None:
    # GIVEN the recorded calls of the stand-in handler
    calls = recorded_clients("stand_in_handler", _handler(tmp_path))
    # WHEN the floor probe replays them without the handler on the path, and the
    # handler's import is timed
    floor_wall, floor_cpu = floor_seconds(calls, probe_env({}))
    wall, cpu = import_seconds("stand_in_handler", _handler(tmp_path))
    # THEN both report positive wall and CPU seconds (the floor created every client:
    # a call it could not replay would have failed the probe)
    assert floor_wall > 0 and floor_cpu > 0 and wall > 0 and cpu > 0


def test_the_probe_environment_has_fake_credentials_no_pyc_and_code_root_first(
    tmp_path: Path,
) -> None:
    layer = tmp_path / "layer"
    env = probe_env({"TABLE": "t"}, tmp_path, [layer])
    assert env["PYTHONPATH"].split(":") == [str(tmp_path), str(layer)]
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_REGION"], env["TABLE"]) == (
        "bench",
        "us-east-1",
        "t",
    )
    assert "PYTHONPATH" not in probe_env({})


def test_heaviest_sums_the_handlers_direct_imports_by_package() -> None:
    log = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |     120000 |   boto3",
            "import time:        50 |      50000 |     botocore.client",
            "import time:        10 |      30000 |   pydantic",
            "import time:        10 |      20000 |   pydantic.main",
            "import time:       500 |     200000 | handler",
        ]
    )
    assert heaviest(log, "handler", top=2) == [("boto3", 0.12), ("pydantic", 0.05)]


def test_the_libraries_floor_lists_what_the_import_loads_outside_the_code(
    tmp_path: Path,
) -> None:
    # GIVEN a handler in its code root that imports a module beside it, a library
    # package from elsewhere on the path, and a standard-library module
    code, library = tmp_path / "code", tmp_path / "site"
    (library / "fake_library").mkdir(parents=True)
    (library / "fake_library" / "__init__.py").write_text("from fake_library import part\n")
    (library / "fake_library" / "part.py").write_text("VALUE = 1\n")
    code.mkdir()
    (code / "own_helper.py").write_text("import decimal\n")
    (code / "stand_in_handler.py").write_text("import own_helper\nimport fake_library\n")
    env = probe_env({}, code, [library])
    # WHEN the libraries probe lists them with only the code root as the function's code
    modules, packages = library_modules("stand_in_handler", env, [code])
    # THEN the library's modules and the standard-library module are listed, in load
    # order, and not the handler's own modules; the library is the one package named
    assert "own_helper" not in modules and "stand_in_handler" not in modules
    assert modules.index("decimal") < modules.index("fake_library")
    assert {"fake_library", "fake_library.part"} <= set(modules)
    assert packages == ["fake_library"]
    # AND the libraries' floor imports them (the library on the path, not the code)
    floor_wall, floor_cpu = library_floor_seconds([], modules, probe_env({}, library))
    assert floor_wall > 0 and floor_cpu > 0


def test_the_libraries_floor_fails_on_a_module_it_cannot_import(tmp_path: Path) -> None:
    # GIVEN a module list naming a library that is not on the floor's path
    # WHEN the libraries' floor replays it THEN the probe fails (no row on a partial floor)
    with pytest.raises(RuntimeError, match="No module named 'not_installed_library'"):
        library_floor_seconds([], ["json", "not_installed_library"], probe_env({}))
