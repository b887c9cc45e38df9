"""Inside the moto process: a missing key is 403 to a caller that may not list the bucket.

S3 answers ``GetObject`` and ``HeadObject`` of a key that does not exist with 404
(``NoSuchKey``) only when the caller has ``s3:ListBucket`` on the bucket; to any other
caller it answers 403 (``AccessDenied``), so that who may not list a bucket cannot
learn which keys it holds (API reference, GetObject and HeadObject, "Permissions").
moto always answers 404, so code that handles only ``NoSuchKey`` passed locally and
failed on AWS. With :func:`patches` installed, moto answers as S3 does.

The ``s3:ListBucket`` check is IAM's (``localstage/_moto_iam.py``: identity policies
and the bucket policy, Deny wins) over the ``GetObject`` request's context. AWS does not
document which context keys this check sees; that request carries no ``s3:prefix``,
and IAM treats a condition on a key missing from the request context as false (IAM
User Guide, "Condition operators"). So a grant conditioned on ``s3:prefix`` does not
grant here, and code relying on one fails locally, not on AWS.

Nothing changes while moto does not enforce IAM (its first
``INITIAL_NO_AUTH_ACTION_COUNT`` requests, or every request of an in-process
``mock_aws`` without IAM), nor for unsigned requests.
"""

from __future__ import annotations

from typing import Any

from localstage._moto_patch import Patch

#: Sub-resources of GET on a key that are other operations (ACLs, tagging, parts...).
_OTHER_OPERATIONS = ("uploadId", "acl", "tagging", "legal-hold", "attributes", "retention")


def patches() -> list[Patch]:
    """Patches of moto's S3 responses: GetObject/HeadObject of a missing key check ListBucket."""
    from moto.s3.exceptions import MissingKey, S3AccessDeniedError
    from moto.s3.responses import S3Response

    get = S3Response._key_response_get
    head = S3Response.head_object

    def key_response_get(self: Any, query: dict[str, Any], key_name: str) -> Any:
        try:
            return get(self, query, key_name)
        except MissingKey:
            if not any(name in query for name in _OTHER_OPERATIONS) and not may_list_bucket(
                self, self.bucket_name
            ):
                raise S3AccessDeniedError() from None
            raise

    def head_object(
        self: Any, bucket_name: str, query: dict[str, Any], key_name: str, headers: Any
    ) -> Any:
        response = head(self, bucket_name, query, key_name, headers)
        if response[0] == 404 and not may_list_bucket(self, bucket_name):
            # A HEAD response has no body: S3 answers a bare 403.
            return 403, {}, ""
        return response

    return [
        Patch(S3Response, "_key_response_get", key_response_get),
        Patch(S3Response, "head_object", head_object),
    ]


def may_list_bucket(response: Any, bucket_name: str) -> bool:
    """Whether the request's caller may ``s3:ListBucket`` on ``bucket_name``.

    True whenever moto does not enforce IAM for this request (nothing to decide).
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import S3IAMRequest
    from moto.utilities.utils import get_partition

    from localstage._moto_iam import is_permitted

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return True
    if "Authorization" not in response.headers:
        return True
    request = S3IAMRequest(
        account_id=response.current_account,
        method=response.method,
        path=response.raw_path,
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action="ListBucket",
    )
    bucket_arn = f"arn:{get_partition(response.region)}:s3:::{bucket_name}"
    # The GetObject/HeadObject request's context: no s3:prefix, so a grant conditioned
    # on one does not count (a condition on a missing key is false).
    return is_permitted(request, "s3:ListBucket", bucket_arn)
