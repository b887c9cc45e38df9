"""The event_sourcing pattern, whole: stack, construct, Lambda code (runtime/), scenarios."""
