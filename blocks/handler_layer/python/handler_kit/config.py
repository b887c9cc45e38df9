"""Reading the function's settings from its environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Self, TypeVar

_S = TypeVar("_S")


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


def int_fields_from_env(
    settings_class: type,
    variables: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    *,
    minimums: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Integer fields of a settings dataclass read from the environment.

    Each field's default is the dataclass's own, so a default is stated once.

    Parameters
    ----------
    settings_class : type
        A dataclass whose fields named in ``variables`` are ints with defaults.
    variables : Mapping[str, str]
        Field name to environment variable name.
    environ : Mapping[str, str], optional
        Where to look; ``os.environ`` by default.
    minimums : Mapping[str, int], optional
        Smallest accepted value per field (1 when not given).

    Raises
    ------
    InvalidSettingError
        If a variable is set but is not an integer at or above its minimum.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Settings:
    ...     retry_after_seconds: int = 2
    >>> int_fields_from_env(Settings, {"retry_after_seconds": "RETRY_AFTER_SECONDS"}, {})
    {'retry_after_seconds': 2}
    """
    env = os.environ if environ is None else environ
    defaults: dict[str, int] = {
        field.name: field.default
        for field in dataclasses.fields(settings_class)
        if isinstance(field.default, int)
    }
    return {
        name: int_env(env, variable, defaults[name], minimum=(minimums or {}).get(name, 1))
        for name, variable in variables.items()
    }


def settings_from_env(
    settings_class: type[_S],
    variables: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    *,
    minimums: Mapping[str, int] | None = None,
    **other: Any,
) -> _S:
    """A settings dataclass with its integer fields read as :func:`int_fields_from_env` does.

    ``other`` are the non-integer fields (or overrides) passed on as they are.

    Raises
    ------
    InvalidSettingError
        If a variable is set but is not an integer at or above its minimum.
    """
    fields = int_fields_from_env(settings_class, variables, environ, minimums=minimums)
    return settings_class(**fields, **other)


#: The ``dataclasses.field`` metadata key that names a field's environment variable.
ENV_VARIABLE = "env_variable"


def env_int(default: int, variable: str) -> int:
    """An integer field of an :class:`EnvSettings` dataclass, read from ``variable``.

    Parameters
    ----------
    default : int
        The field's default, used when the variable is unset or empty.
    variable : str
        The environment variable the construct sets.
    """
    field: int = dataclasses.field(default=default, metadata={ENV_VARIABLE: variable})
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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read the fields declared with :func:`env_int`; unset variables keep the defaults.

        Raises
        ------
        InvalidSettingError
            If a variable is set to anything but a positive integer (a ``ValueError``).
        """
        # A subclass is a dataclass; the base is not, which mypy cannot know of ``cls``.
        variables = {
            field.name: field.metadata[ENV_VARIABLE]
            for field in dataclasses.fields(cls)  # type: ignore[arg-type]
            if ENV_VARIABLE in field.metadata
        }
        return settings_from_env(cls, variables, environ)
