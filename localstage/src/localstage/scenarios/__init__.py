"""End-to-end scenarios, one module per pattern, run by ``python -m localstage demo``.

localstage knows nothing of the app: the scenario modules are the files a glob finds
(``--scenarios 'patterns/*/scenarios.py'``, else the app's ``pyproject.toml``
``[tool.localstage] scenarios``), relative to the app's folder (``$LOCALSTAGE_APP_DIR``,
else the working directory: where :mod:`localstage.assembly` synthesizes the app),
imported with that folder on ``sys.path``. A scenario module defines ``STACK`` (the
pattern's stack name without the stage prefix, e.g. ``"DecoupledInvocation"``) and
``SCENARIOS``, a list of
:class:`Scenario`. Modules whose stack is not in the stage are skipped, so a fork
that deletes a pattern needs no change here. Scenarios only use a
:class:`~localstage.target.Target`, so they can run against a deployed stage too.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import json
import sys
import time
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from localstage.assembly import PROJECT_ROOT
from localstage.target import HttpResponse, Target


class ScenarioFailedError(AssertionError):
    """A scenario did not reach its expected end state."""


@dataclass
class Transcript:
    """A short readable record of what a scenario did."""

    stream: TextIO | None = None
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _last_poll: tuple[Any, ...] | None = None

    def say(self, text: str) -> None:
        line = f"  {time.monotonic() - self.started:6.2f}s  {text}"
        self.lines.append(line)
        if self.stream is not None:
            print(line, file=self.stream, flush=True)

    def http(self, response: HttpResponse, sent: Any) -> None:
        path = response.url.split("/", 3)[-1]
        # Polling repeats itself: print a poll only when its answer changes.
        state = response.body.get("status") if isinstance(response.body, dict) else None
        key = (response.method, path, response.status, state)
        if response.method == "GET" and key == self._last_poll:
            return
        self._last_poll = key
        request = f" {_short(sent)}" if sent is not None else ""
        self.say(f"{response.method} /{path}{request} -> {response.status} {_short(response.body)}")


def post_accepted(target: Target, api: str, path: str, body: dict[str, Any]) -> HttpResponse:
    """POST ``body`` to an asynchronous API; fails unless it answered 202 with a Location.

    Usage (needs a running stage or AWS, so not a doctest)::

        post_accepted(target, api, "jobs", {"task": "thumbnail"})
    """
    response = target.call_api(api, "POST", path, json_body=body)
    if response.status != 202 or "location" not in response.headers:
        raise ScenarioFailedError(f"POST /{path} answered {response.status}: {response.body}")
    return response


def poll_until_done(
    target: Target, api: str, location: str, *, description: str, timeout: float, interval: float
) -> HttpResponse:
    """GET ``location`` until it answers 200; 202 means still in progress, anything else fails.

    Usage (needs a running stage or AWS, so not a doctest)::

        poll_until_done(
            target, api, "/api/jobs/1", description="job 1 to finish", timeout=30, interval=0.3
        )
    """

    def done() -> HttpResponse | None:
        response = target.call_api(api, "GET", location)
        if response.status not in (200, 202):
            raise ScenarioFailedError(f"GET {location} answered {response.status}: {response.body}")
        return response if response.status == 200 else None

    return target.wait_for(description, done, timeout=timeout, interval=interval)


def _short(value: Any, limit: int = 110) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Scenario:
    """One end-to-end story with an expected end state; ``run`` raises if not reached."""

    name: str
    run: Callable[[Target, Transcript], None]


@dataclass
class ScenarioResult:
    stack: str
    name: str
    passed: bool
    seconds: float
    error: str | None = None


class ScenarioDiscoveryError(RuntimeError):
    """No glob of scenario modules was given or configured, or a module is malformed."""


def configured_scenarios(root: Path | None = None) -> str | None:
    """The glob of ``[tool.localstage] scenarios`` in ``root``'s ``pyproject.toml``, if any
    (``root``: the app's folder by default)."""
    pyproject = (root or PROJECT_ROOT) / "pyproject.toml"
    if not pyproject.is_file():
        return None
    settings = tomllib.loads(pyproject.read_text()).get("tool", {}).get("localstage", {})
    pattern = settings.get("scenarios")
    return str(pattern) if pattern else None


def scenario_modules(pattern: str | None = None, root: Path | None = None) -> list[ModuleType]:
    """The scenario modules ``pattern`` (a file glob relative to ``root``, the
    app's folder by default: ``$LOCALSTAGE_APP_DIR``, else the working directory) finds,
    in path order; files named ``_*`` are skipped.

    Without ``pattern``, ``root``'s ``pyproject.toml`` ``[tool.localstage] scenarios``.
    ``root`` goes on ``sys.path``: a module is imported by its dotted path
    (``patterns/fan_out_fan_in/scenarios.py`` is ``patterns.fan_out_fan_in.scenarios``),
    or from its file when that name is taken by another module.

    Usage (needs a running stage or AWS, so not a doctest)::

        [m.STACK for m in scenario_modules("patterns/*/scenarios.py")]
        # -> ['DecoupledInvocation', 'EventSourcing', ...]
    """
    root = (root or PROJECT_ROOT).resolve()
    pattern = pattern or configured_scenarios(root)
    if not pattern:
        raise ScenarioDiscoveryError(
            "no scenario modules: pass --scenarios 'GLOB' or set [tool.localstage] "
            f"scenarios = 'GLOB' in {root / 'pyproject.toml'}"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    paths = sorted(
        (root / found).resolve()
        for found in glob.glob(pattern, root_dir=root, recursive=True)
        if found.endswith(".py") and not Path(found).name.startswith("_")
    )
    modules = [_import_file(path, root) for path in paths]
    for module in modules:
        if not isinstance(getattr(module, "STACK", None), str) or not hasattr(module, "SCENARIOS"):
            raise ScenarioDiscoveryError(f"{module.__file__} defines no STACK and SCENARIOS")
    return modules


def _import_file(path: Path, root: Path) -> ModuleType:
    parts = path.relative_to(root).with_suffix("").parts if path.is_relative_to(root) else ()
    name = ".".join(parts) if parts and all(p.isidentifier() for p in parts) else ""
    if name:
        try:
            module = importlib.import_module(name)
        except ImportError:
            pass
        else:
            if module.__file__ and Path(module.__file__).resolve() == path:
                return module
    # Not importable by its path (or that name is another module): load the file itself.
    unique = "_localstage_scenario_" + "_".join(path.relative_to(root).with_suffix("").parts)
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module


def run_scenarios(
    target: Target,
    stacks: list[str],
    *,
    stream: TextIO | None = None,
    scenarios: str | None = None,
) -> list[ScenarioResult]:
    """Run the scenarios of every module (:func:`scenario_modules` of the glob
    ``scenarios``) whose stack is deployed."""
    results: list[ScenarioResult] = []
    for module in scenario_modules(scenarios):
        stack = module.STACK
        if not any(name == stack or name.endswith(f"-{stack}") for name in stacks):
            continue
        for scenario in module.SCENARIOS:
            if stream is not None:
                print(f"\n== {stack}: {scenario.name}", file=stream, flush=True)
            transcript = Transcript(stream)
            target.observer = transcript.http
            began = time.monotonic()
            try:
                scenario.run(target, transcript)
            except Exception as error:
                seconds = time.monotonic() - began
                message = f"{type(error).__name__}: {error}"
                transcript.say(f"FAILED: {message}")
                if stream is not None and not isinstance(error, AssertionError):
                    traceback.print_exc(file=stream)
                results.append(ScenarioResult(stack, scenario.name, False, seconds, message))
            else:
                seconds = time.monotonic() - began
                transcript.say(f"ok ({seconds:.1f} s)")
                results.append(ScenarioResult(stack, scenario.name, True, seconds))
            finally:
                target.observer = None
    return results
