"""SigV4 authorization of an API Gateway method (``AuthorizationType: AWS_IAM``).

The signature is verified against the caller's secret as API Gateway does, on the path
and query exactly as sent, and refused in API Gateway's words.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

import botocore.credentials
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from werkzeug.wrappers import Request

from localstage.apigateway_proxy import GatewayError, raw_url
from localstage.cloud import REGION, Credentials

_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/(?P<scope>[^,\s]+)")
_SIGNATURE = re.compile(r"Signature=(?P<signature>[0-9a-f]+)")
_SIGNED_HEADERS = re.compile(r"SignedHeaders=(?P<headers>[^,\s]+)")
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
#: SigV4 replay protection: a request must reach AWS within five minutes of the time it
#: was signed (X-Amz-Date), before or after.
SIGNATURE_SKEW = datetime.timedelta(minutes=5)


def authenticate(
    request: Request, body: bytes, identities: Callable[[str], Credentials | None]
) -> Credentials:
    """The caller of a request to an ``AWS_IAM`` method, or the gateway error AWS answers:
    no ``Authorization`` header, an incomplete one, a signing time more than five minutes
    away, an unknown access key, a signature that does not match."""
    authorization = request.headers.get("Authorization")
    if not authorization:
        raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
    credential = _CREDENTIAL.search(authorization)
    signature = _SIGNATURE.search(authorization)
    signed_headers = _SIGNED_HEADERS.search(authorization)
    if not (
        authorization.startswith("AWS4-HMAC-SHA256 ")
        and credential
        and signature
        and signed_headers
        and request.headers.get("X-Amz-Date")
    ):
        raise GatewayError(
            "INCOMPLETE_SIGNATURE",
            f"Authorization header requires 'Credential', 'Signature', 'SignedHeaders' "
            f"and 'X-Amz-Date'. Authorization={authorization}",
            status=403,
        )
    check_signing_time(request.headers["X-Amz-Date"])
    identity = identities(credential.group("key"))
    if identity is None:
        raise GatewayError(
            "UNAUTHORIZED",
            "The security token included in the request is invalid",
            status=403,
        )
    expected = _signature(request, body, identity, signed_headers.group("headers"))
    if expected != signature.group("signature"):
        raise GatewayError(
            "INVALID_SIGNATURE",
            "The request signature we calculated does not match the signature you "
            "provided. Check your AWS Secret Access Key and signing method.",
        )
    return identity


def check_signing_time(amz_date: str, now: datetime.datetime | None = None) -> None:
    """Refuse a signature made more than :data:`SIGNATURE_SKEW` before or after now, in
    API Gateway's words. The wall clock, not the stage clock: clients sign in real time.

    AWS ("a request must reach AWS within five minutes of the time stamp in the request"):
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html
    """
    signed_at = None
    if _AMZ_DATE.fullmatch(amz_date):
        try:
            signed_at = datetime.datetime.strptime(amz_date, _AMZ_DATE_FORMAT)
        except ValueError:  # e.g. month 13
            signed_at = None
    if signed_at is None:
        raise GatewayError(
            "INCOMPLETE_SIGNATURE",
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601",
            status=403,
        )
    now = (now or datetime.datetime.now(datetime.UTC)).replace(tzinfo=None, microsecond=0)
    stamp = now.strftime(_AMZ_DATE_FORMAT)
    if signed_at < now - SIGNATURE_SKEW:
        earliest = (now - SIGNATURE_SKEW).strftime(_AMZ_DATE_FORMAT)
        raise GatewayError(
            "INVALID_SIGNATURE",
            f"Signature expired: {amz_date} is now earlier than {earliest} ({stamp} - 5 min.)",
        )
    if signed_at > now + SIGNATURE_SKEW:
        latest = (now + SIGNATURE_SKEW).strftime(_AMZ_DATE_FORMAT)
        raise GatewayError(
            "INVALID_SIGNATURE",
            f"Signature not yet current: {amz_date} is still later than {latest} "
            f"({stamp} + 5 min.)",
        )


def _signature(request: Request, body: bytes, identity: Credentials, signed: str) -> str:
    headers = {name: request.headers.get(name, "") for name in signed.split(";")}
    aws_request = AWSRequest(
        method=request.method,
        url=raw_url(request.environ),
        data=body,
        headers=headers,
    )
    aws_request.context["timestamp"] = request.headers.get("X-Amz-Date", "")
    credentials = botocore.credentials.Credentials(
        identity.access_key_id, identity.secret_access_key, identity.session_token
    )
    scope_region = REGION
    signer = SigV4Auth(credentials, "execute-api", scope_region)
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    return str(signer.signature(string_to_sign, aws_request))
