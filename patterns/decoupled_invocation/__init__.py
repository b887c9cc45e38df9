"""The decoupled_invocation pattern, whole: stack, construct, Lambda code (runtime/), scenarios."""
