"""The one_off_schedules pattern, whole: stack, construct, Lambda code (runtime/), scenarios."""
