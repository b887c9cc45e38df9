"""The patterns: one folder each (stack, construct, Lambda code, scenarios, doc).

A pattern's name (stack, alarm and dashboard names) is its folder's name in PascalCase,
so a pattern is added by copying a folder under a new name. This module stays light
(no CDK import): the demo scenarios name their stack with it too.
"""

from pathlib import PurePath


def pattern_name_of(module: str) -> str:
    """The PascalCase name of a pattern folder, given its name, one of its modules or
    the path of one of its files (``__file__``: a module loaded from its file may have
    another name).

    Examples
    --------
    >>> pattern_name_of("patterns.fan_out_fan_in.stack")
    'FanOutFanIn'
    >>> pattern_name_of("one_off_schedules")
    'OneOffSchedules'
    >>> pattern_name_of("/repo/patterns/event_sourcing/scenarios.py")
    'EventSourcing'
    """
    if module.endswith(".py"):
        folder = PurePath(module).parent.name
    elif module.startswith("patterns."):
        folder = module.split(".")[1]
    else:
        folder = module
    return "".join(part.capitalize() for part in folder.split("_"))
