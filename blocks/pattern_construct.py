"""The base of every pattern's construct: its function maker and its REST API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from constructs import Construct

from blocks.api import ServiceApi
from blocks.function import FunctionMaker, ServiceFunction, function_maker
from blocks.stage_settings import StageSettings


@dataclass(frozen=True)
class ApiThrottling:
    """How many requests per second (and bursts) a pattern's API takes.

    Attributes
    ----------
    rate_limit, burst_limit : float, int
        The stage-wide limits of every method.
    write_rate_limit, write_burst_limit : float, int or None
        Lower limits of the methods that start work (see :meth:`PatternConstruct.add_api`);
        reads are cheap and keep the stage-wide ones.
    """

    rate_limit: float = 50
    burst_limit: int = 100
    write_rate_limit: float | None = None
    write_burst_limit: int | None = None


class PatternConstruct(Construct):
    """A pattern's construct: functions made from its own code root, and one REST API.

    A pattern subclasses it, passes its ``runtime/`` folder up, makes its functions
    with :attr:`make_function` and its API with :meth:`add_api`.

    Attributes
    ----------
    settings:
        The stage's settings.
    make_function:
        Makes the pattern's functions (:class:`blocks.function.FunctionMaker`).
    api_function:
        The function behind the API; it has its own role, as every function.
    api:
        The REST API (IAM authorization).
    """

    api_function: ServiceFunction
    api: ServiceApi

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StageSettings, code: Path
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.make_function: FunctionMaker = function_maker(self, settings=settings, code=code)

    def add_api(
        self,
        title: str,
        throttling: ApiThrottling,
        *,
        openapi: Path,
        write_methods: Iterable[str] = (),
    ) -> ServiceApi:
        """Make :attr:`api`, described as ``<title> (<stage>)``.

        Parameters
        ----------
        title : str
            What the API serves, e.g. ``Decoupled invocation jobs``.
        throttling : ApiThrottling
            Its limits.
        openapi : Path
            The pattern's ``openapi.json`` (generated from its handler): the API's
            request models come from it, and synth stops if routes and document differ.
        write_methods : Iterable[str], optional
            The methods that get the write limits, as ``<resource path>/<HTTP method>``
            (e.g. ``/jobs/POST``).

        Raises
        ------
        ValueError
            If ``write_methods`` are given but ``throttling`` has no write limits.
        """
        rate, burst = throttling.write_rate_limit, throttling.write_burst_limit
        method_throttling: dict[str, tuple[float, int]] = {}
        for method in write_methods:
            if rate is None or burst is None:
                raise ValueError("write_methods need the write limits of the API's throttling")
            method_throttling[method] = (rate, burst)
        self.api = ServiceApi(
            self,
            "Api",
            settings=self.settings,
            description=f"{title} ({self.settings.stage_name})",
            throttling_rate_limit=throttling.rate_limit,
            throttling_burst_limit=throttling.burst_limit,
            method_throttling=method_throttling,
            openapi=openapi,
        )
        return self.api
