"""The recursive_processor pattern, whole: stack, construct, Lambda code (runtime/), scenarios."""
