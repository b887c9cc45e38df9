"""Reading the function's settings from its environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Self


class SettingError(Exception):
    """An environment variable the function needs is missing or unusable."""


class MissingSettingError(SettingError, KeyError):
    """A required environment variable is missing or empty."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a setting error reads as a plain sentence.
        return str(self.args[0]) if self.args else ""


class InvalidSettingError(SettingError, ValueError):
    """An environment variable is set but is not a valid value."""


def require_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Return a required environment variable or fail with a clear message.

    Parameters
    ----------
    name : str
        Variable name.
    environ : Mapping[str, str], optional
        Where to look; ``os.environ`` by default.

    Returns
    -------
    str
        The non-empty value.

    Raises
    ------
    MissingSettingError
        If the variable is missing or empty (a ``KeyError``).

    Examples
    --------
    >>> require_env("TABLE_NAME", {"TABLE_NAME": "jobs"})
    'jobs'
    """
    env = os.environ if environ is None else environ
    value = env.get(name, "")
    if not value:
        raise MissingSettingError(f"required environment variable {name} is not set")
    return value


def int_env(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    """Return an integer environment variable, ``default`` when it is unset or empty.

    Parameters
    ----------
    env : Mapping[str, str]
        Where to look (``os.environ`` or a test's dict).
    name : str
        Variable name.
    default : int
        Value when the variable is missing or empty.
    minimum : int, optional
        Smallest accepted value (1 by default: a positive integer).

    Raises
    ------
    InvalidSettingError
        If the variable is set but is not an integer, or is below ``minimum``
        (a ``ValueError``).

    Examples
    --------
    >>> int_env({"RETRY_AFTER_SECONDS": "5"}, "RETRY_AFTER_SECONDS", 2)
    5
    >>> int_env({}, "RETRY_AFTER_SECONDS", 2)
    2
    """
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSettingError(
            f"environment variable {name} must be an integer, got {raw!r}"
        ) from None
    if value < minimum:
        bound = "> 0" if minimum == 1 else f">= {minimum}"
        raise InvalidSettingError(f"environment variable {name} must be {bound}, got {value}")
    return value


#: The ``dataclasses.field`` metadata keys naming a field's environment variable and
#: the smallest value it accepts.
ENV_VARIABLE = "env_variable"
ENV_MINIMUM = "env_minimum"


def env_int(default: int, variable: str, *, minimum: int = 1) -> int:
    """An integer field of an :class:`EnvSettings` dataclass, read from ``variable``.

    Parameters
    ----------
    default : int
        The field's default, used when the variable is unset or empty.
    variable : str
        The environment variable the construct sets.
    minimum : int, optional
        Smallest accepted value (1 by default: a positive integer).
    """
    field: int = dataclasses.field(
        default=default, metadata={ENV_VARIABLE: variable, ENV_MINIMUM: minimum}
    )
    return field


class EnvSettings:
    """Base of a settings dataclass whose integer fields come from environment variables.

    A subclass is a (frozen) dataclass that declares each field read from the
    environment with :func:`env_int`: the variable is stated once, beside its field
    and default, and every pattern reads its variables the same way.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Settings(EnvSettings):
    ...     retry_after_seconds: int = env_int(2, "RETRY_AFTER_SECONDS")
    ...     page_size: int = 25
    >>> Settings.from_env({"RETRY_AFTER_SECONDS": "5"})
    Settings(retry_after_seconds=5, page_size=25)
    """

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **fields: Any) -> Self:
        """Read the fields declared with :func:`env_int`; unset variables keep the defaults.

        ``fields`` are passed on as they are: the fields not read from a variable, or
        a value that overrides a variable's (a test's).

        Raises
        ------
        InvalidSettingError
            If a variable is set to anything but an integer at or above its field's
            minimum (a ``ValueError``).
        """
        env = os.environ if environ is None else environ
        # A subclass is a dataclass; the base is not, which mypy cannot know of ``cls``.
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if (
                ENV_VARIABLE in field.metadata
                and field.name not in fields
                and isinstance(field.default, int)
            ):
                fields[field.name] = int_env(
                    env,
                    field.metadata[ENV_VARIABLE],
                    field.default,
                    minimum=field.metadata[ENV_MINIMUM],
                )
        return cls(**fields)
