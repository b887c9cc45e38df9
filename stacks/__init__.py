"""One thin stack per pattern, composed into a ``cdk.Stage`` per stage name."""
