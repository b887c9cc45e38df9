"""Helpers every pattern's Lambda code shares, shipped as one Lambda layer.

The layer puts this package on the function's path after the function's own code
(``/opt/python``), so handlers and logic modules import it top-level::

    from handler_kit import clock, config, dynamodb, fingerprints, http_requests
    from handler_kit import responses, strict_json
    from handler_kit.errors import InvalidRequestError

Only the standard library, boto3, Powertools and pydantic are used, and the code
runs on Python 3.11 (local tests) as on Lambda's 3.14.
"""
