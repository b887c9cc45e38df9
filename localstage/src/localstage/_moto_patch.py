"""What a moto patch is: a replacement that :mod:`localstage.moto_patches` installs.

The ``_moto_*`` helper modules build patches (the replacement functions and the moto
objects they go on) and assign nothing onto moto themselves: every assignment onto a
moto module or class happens in :func:`localstage.moto_patches.install`.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Patch(NamedTuple):
    """``setattr(owner, name, value)`` on a moto module or class."""

    owner: Any
    name: str
    value: Any
