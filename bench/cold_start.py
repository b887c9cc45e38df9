"""Cold-start proxy: each handler's import against a floor that creates the same clients.

Issue 18's floor is "a bare handler that imports boto3 and creates the same clients".
Which clients a function creates at import is found, not listed by hand: one probe
interpreter imports the handler with boto3's ``Session.client``/``Session.resource``
recorded (service, session, arguments, the botocore ``Config`` options), and the floor
probe replays that list on a bare ``import boto3``. Handler and floor then run side by
side, alternating, in fresh interpreters (no ``.pyc``, fake credentials), median of 5.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.figures import Figure

if TYPE_CHECKING:
    from bench.static import FunctionAsset

PYTHON = sys.executable
COLD_START_TARGET_MS = 50.0
#: Fresh interpreters per probe (handler and floor alternate).
REPEAT = 5

_IMPORT_PROBE = """
import sys, time
started, cpu = time.perf_counter(), time.process_time()
__import__(sys.argv[1])
print(time.perf_counter() - started, time.process_time() - cpu)
"""

# Imports the handler with boto3's Session.client/resource recorded and prints the calls
# as JSON. A resource's own inner client call is not recorded (the resource is replayed).
# Arguments are bound to their names; a Config becomes its user-provided options, any
# other value must be JSON (the floor must replay it exactly, so anything else stops).
_RECORD_PROBE = """
import functools, inspect, json, sys
import boto3
from boto3.session import Session
from botocore.config import Config

calls, sessions, depth = [], [], [0]

def _value(value):
    # A copy now: creating the client rewrites the options (max_attempts in retries).
    if isinstance(value, Config):
        return {"__config__": json.loads(json.dumps(value._user_provided_options))}
    return json.loads(json.dumps(value))

def _record(kind, original):
    signature = inspect.signature(original)

    @functools.wraps(original)
    def recorded(self, *args, **kwargs):
        if depth[0] == 0:
            bound = signature.bind(self, *args, **kwargs)
            arguments = dict(bound.arguments)
            del arguments["self"]
            service = arguments.pop("service_name")
            if self is boto3.DEFAULT_SESSION:
                session = "default"
            else:
                if not any(known is self for known in sessions):
                    sessions.append(self)
                session = next(i for i, known in enumerate(sessions) if known is self)
            calls.append({
                "kind": kind,
                "service": service,
                "session": session,
                "arguments": {name: _value(value) for name, value in arguments.items()},
            })
        depth[0] += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    return recorded

Session.client = _record("client", Session.client)
Session.resource = _record("resource", Session.resource)
__import__(sys.argv[1])
print(json.dumps(calls))
"""

# A bare handler: import boto3, then create the recorded clients (same kind, session,
# service and arguments), timed like the handler's import.
_FLOOR_PROBE = """
import json, sys, time
calls = json.loads(sys.argv[1])
started, cpu = time.perf_counter(), time.process_time()
import boto3
from botocore.config import Config

sessions = {}
for call in calls:
    if call["session"] == "default":
        session = boto3._get_default_session()
    else:
        session = sessions.setdefault(call["session"], boto3.session.Session())
    arguments = {
        name: Config(**value["__config__"])
        if isinstance(value, dict) and "__config__" in value
        else value
        for name, value in call["arguments"].items()
    }
    getattr(session, call["kind"])(call["service"], **arguments)
print(time.perf_counter() - started, time.process_time() - cpu)
"""

# Imports the handler and prints, as JSON, the modules the import loaded whose file is
# outside the code roots given as arguments (libraries, standard library), in load
# order, and the packages among them that ``import boto3`` does not load. Aliases of
# the main module (``__mp_main__``) are not modules of their own.
_LIBRARIES_PROBE = """
import json, os, sys
before = set(sys.modules)
import boto3
with_boto3 = {name.split(".")[0] for name in sys.modules}
__import__(sys.argv[1])
roots = tuple(os.path.join(root, "") for root in sys.argv[2:])
modules = [
    name for name, module in list(sys.modules.items())
    if name not in before and not name.startswith("__")
    and not (getattr(module, "__file__", None) or "").startswith(roots)
]
packages = sorted({
    name.split(".")[0] for name in modules
    if not name.startswith("_")
    and name.split(".")[0] not in with_boto3 | sys.stdlib_module_names
})
print(json.dumps({"modules": modules, "packages": packages}))
"""

# The libraries' floor: the bare handler of _FLOOR_PROBE that also imports the modules
# _LIBRARIES_PROBE listed. A module that does not import fails the probe (no row is
# better than a floor that silently left a library out).
_LIBRARY_FLOOR_PROBE = _FLOOR_PROBE.replace(
    "from botocore.config import Config\n",
    "from botocore.config import Config\n"
    "import importlib\n"
    "for name in json.loads(sys.argv[2]):\n"
    "    importlib.import_module(name)\n",
)


@dataclass(frozen=True)
class ColdStart:
    """One function's import and its floor, both medians of fresh interpreters."""

    seconds: float
    floor_seconds: float
    #: The same in CPU time of the process, which a loaded machine moves far less.
    cpu_seconds: float
    floor_cpu_seconds: float
    #: The boto3 calls the handler makes at import, as the floor replays them.
    clients: list[dict[str, Any]]
    heavy: list[tuple[str, float]]
    #: The floor plus every library module the handler's import loads: wall, CPU.
    library_seconds: float = 0.0
    library_cpu_seconds: float = 0.0
    #: The library modules that floor imports (its ``sys.modules`` names).
    library_modules: tuple[str, ...] = ()
    #: The libraries among them beyond boto3 (top-level packages).
    library_packages: tuple[str, ...] = ()


def probe_env(
    environment: dict[str, str], path: Path | None = None, layer_dirs: Sequence[Path] = ()
) -> dict[str, str]:
    """The probes' environment: fake credentials, no ``.pyc``, code root then layers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("PYTHONPATH", None)
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        PYTHONDONTWRITEBYTECODE="1",
        **environment,
    )
    search_path = [str(folder) for folder in (path, *layer_dirs) if folder is not None]
    if search_path:
        env["PYTHONPATH"] = os.pathsep.join(search_path)
    return env


def _run(args: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run([PYTHON, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"probe failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def recorded_clients(module: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """The boto3 clients and resources ``module`` creates while it is imported."""
    calls: list[dict[str, Any]] = json.loads(_run(["-c", _RECORD_PROBE, module], env))
    return calls


def _wall_and_cpu(output: str) -> tuple[float, float]:
    wall, cpu = output.split()
    return float(wall), float(cpu)


def floor_seconds(calls: Sequence[dict[str, Any]], env: dict[str, str]) -> tuple[float, float]:
    """One fresh interpreter's ``import boto3`` plus creating ``calls``: wall, CPU."""
    return _wall_and_cpu(_run(["-c", _FLOOR_PROBE, json.dumps(list(calls))], env))


def library_modules(
    module: str, env: dict[str, str], code_roots: Sequence[Path]
) -> tuple[list[str], list[str]]:
    """The modules importing ``module`` loads from outside ``code_roots``, in load order,
    and the packages among them besides boto3's and the standard library."""
    args = ["-c", _LIBRARIES_PROBE, module, *(str(root) for root in code_roots)]
    found = json.loads(_run(args, env))
    return found["modules"], found["packages"]


def library_floor_seconds(
    calls: Sequence[dict[str, Any]], modules: Sequence[str], env: dict[str, str]
) -> tuple[float, float]:
    """The floor of ``calls`` plus importing ``modules``, in one fresh interpreter."""
    args = ["-c", _LIBRARY_FLOOR_PROBE, json.dumps(list(calls)), json.dumps(list(modules))]
    return _wall_and_cpu(_run(args, env))


def import_seconds(module: str, env: dict[str, str]) -> tuple[float, float]:
    """One fresh interpreter's import of ``module``: wall, CPU."""
    return _wall_and_cpu(_run(["-c", _IMPORT_PROBE, module], env))


def cold_start(
    module: str,
    *,
    path: Path | None,
    environment: dict[str, str],
    layer_dirs: Sequence[Path] = (),
    repeat: int = REPEAT,
) -> ColdStart:
    """``module``'s import and its floor, alternating, median of ``repeat`` each.

    The floor runs in the function's environment without its code on the path.
    """
    env = probe_env(environment, path, layer_dirs)
    floor_env = probe_env(environment)
    calls = recorded_clients(module, env)
    code_roots = [folder for folder in (path, *layer_dirs) if folder is not None]
    libraries, packages = library_modules(module, env, code_roots)
    runs: list[tuple[float, float]] = []
    floors: list[tuple[float, float]] = []
    library_floors: list[tuple[float, float]] = []
    for _ in range(repeat):
        runs.append(import_seconds(module, env))
        floors.append(floor_seconds(calls, floor_env))
        library_floors.append(library_floor_seconds(calls, libraries, floor_env))
    trace = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", f"import {module}"],
        env=env,
        capture_output=True,
        text=True,
    )
    return ColdStart(
        seconds=statistics.median(wall for wall, _ in runs),
        floor_seconds=statistics.median(wall for wall, _ in floors),
        cpu_seconds=statistics.median(cpu for _, cpu in runs),
        floor_cpu_seconds=statistics.median(cpu for _, cpu in floors),
        clients=calls,
        heavy=heaviest(trace.stderr, module),
        library_seconds=statistics.median(wall for wall, _ in library_floors),
        library_cpu_seconds=statistics.median(cpu for _, cpu in library_floors),
        library_modules=tuple(libraries),
        library_packages=tuple(packages),
    )


def heaviest(importtime_log: str, module: str, top: int = 3) -> list[tuple[str, float]]:
    """Packages the handler module imports directly, by cumulative import time.

    ``-X importtime`` prints ``self | cumulative | name`` with the name indented two
    spaces per nesting level; level 1 entries are the handler's own imports.
    """
    totals: dict[str, float] = {}
    for line in importtime_log.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        field = parts[2]
        level = (len(field) - len(field.lstrip()) - 1) // 2
        name = field.strip()
        if level > 1 or name == module:
            continue
        package = name.split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(parts[1]) / 1e6
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)[:top]


def describe_clients(calls: Sequence[dict[str, Any]]) -> str:
    """``boto3.client("dynamodb", config)``-like summary of the recorded calls."""
    if not calls:
        return "none"
    parts = []
    for call in calls:
        arguments = ", ".join(
            "config" if isinstance(value, dict) and "__config__" in value else name
            for name, value in call["arguments"].items()
            if value is not None
        )
        session = "" if call["session"] == "default" else f" (session {call['session']})"
        parts.append(
            f"{call['kind']}({call['service']}{', ' if arguments else ''}{arguments}){session}"
        )
    return ", ".join(parts)


def cold_start_figures(functions: Sequence[FunctionAsset]) -> list[Figure]:
    """Each handler's import against its own floor: ``import boto3`` + the same clients."""
    figures = []
    for function in functions:
        measured = cold_start(
            function.handler_module,
            path=function.asset_dir,
            environment=function.environment,
            layer_dirs=function.layer_dirs,
        )
        cpu, floor_cpu = measured.cpu_seconds * 1000, measured.floor_cpu_seconds * 1000
        heavy = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in measured.heavy)
        figures.append(
            _figure(
                function,
                measured,
                table="Cold start proxy (handler import, fresh interpreter)",
                floor=measured.floor_seconds,
                floor_name="floor",
                note=(
                    f"floor: import boto3 + {describe_clients(measured.clients)}; "
                    f"median of {REPEAT}, side by side; CPU {cpu:.0f} ms vs floor "
                    f"{floor_cpu:.0f} ms ({cpu - floor_cpu:+.0f}); heaviest: {heavy}"
                ),
            )
        )
        figures.append(_own_code_figure(function, measured))
    return figures


#: The table of each handler's own code over the libraries it imports.
OWN_CODE_TABLE = "Cold start: the handler's own code over the libraries it imports"


def _own_code_figure(function: FunctionAsset, measured: ColdStart) -> Figure:
    value, libraries = measured.seconds * 1000, measured.library_seconds * 1000
    floor = measured.floor_seconds * 1000
    cpu = (measured.cpu_seconds - measured.library_cpu_seconds) * 1000
    return _figure(
        function,
        measured,
        table=OWN_CODE_TABLE,
        floor=measured.library_seconds,
        floor_name="libraries",
        note=(
            f"own code {value - libraries:+.0f} ms (CPU {cpu:+.0f}); "
            f"the libraries' floor is the floor above ({floor:.0f} ms) plus the "
            f"{len(measured.library_modules)} modules the import loads from outside the "
            f"function's code and layers ({libraries - floor:+.0f} ms): "
            + (", ".join(measured.library_packages) or "none besides boto3")
        ),
    )


def _figure(
    function: FunctionAsset,
    measured: ColdStart,
    *,
    table: str,
    floor: float,
    floor_name: str,
    note: str,
) -> Figure:
    """The handler's import (ms) against ``floor`` (seconds) plus the budget."""
    value, floor_ms = measured.seconds * 1000, floor * 1000
    return Figure(
        table=table,
        name=f"{function.name} (`{function.handler_module}`)",
        value=value,
        unit="ms",
        floor=floor_ms,
        target=f"<= {floor_name} + {COLD_START_TARGET_MS:g} ms",
        met=value - floor_ms <= COLD_START_TARGET_MS,
        note=note,
    )
