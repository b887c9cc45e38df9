"""The base of every pattern's construct: its function maker and its REST API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from constructs import Construct

from blocks.api import ServiceApi
from blocks.function import FunctionMaker, ServiceFunction, function_maker
from blocks.stage_settings import StageSettings


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
        *,
        throttling_rate_limit: float,
        throttling_burst_limit: int,
        method_throttling: Mapping[str, tuple[float, int]] | None = None,
    ) -> ServiceApi:
        """Make :attr:`api`, described as ``<title> (<stage>)``.

        Parameters
        ----------
        title : str
            What the API serves, e.g. ``Decoupled invocation jobs``.
        throttling_rate_limit, throttling_burst_limit : float, int
            The stage-wide limits of every method.
        method_throttling : Mapping, optional
            Lower limits of some methods, keyed ``<resource path>/<HTTP method>``.
        """
        self.api = ServiceApi(
            self,
            "Api",
            settings=self.settings,
            description=f"{title} ({self.settings.stage_name})",
            throttling_rate_limit=throttling_rate_limit,
            throttling_burst_limit=throttling_burst_limit,
            method_throttling=method_throttling,
        )
        return self.api
