"""The patterns: one folder each (stack, construct, Lambda code, scenarios, doc).

A pattern's name (stack, alarm and dashboard names) is its folder's name in PascalCase,
so a pattern is added by copying a folder under a new name. This module stays light
(no CDK import): the demo scenarios name their stack with it too.
"""


def pattern_name_of(module: str) -> str:
    """The PascalCase name of a pattern folder, given its name or one of its modules.

    Examples
    --------
    >>> pattern_name_of("patterns.fan_out_fan_in.stack")
    'FanOutFanIn'
    >>> pattern_name_of("one_off_schedules")
    'OneOffSchedules'
    """
    folder = module.split(".")[1] if module.startswith("patterns.") else module
    return "".join(part.capitalize() for part in folder.split("_"))
