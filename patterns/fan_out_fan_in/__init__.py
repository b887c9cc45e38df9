"""The fan_out_fan_in pattern, whole: stack, construct, Lambda code (runtime/), scenarios."""
