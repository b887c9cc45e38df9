"""What an AWS account and region need once, before any stage is deployed into them.

A separate CDK app (``account_app.py``), deployed once per account and region by a
person with admin rights: ``make account GITHUB_REPO=owner/name``. It is not a pattern,
so no stage deploys it, and no stage touches what it owns:

- ``<app_name>-ApiGatewayAccount`` (:mod:`account.api_gateway`): the account's API
  Gateway CloudWatch role, which every stage's REST API access logging needs;
- ``<app_name>-CiAccess`` (:mod:`account.ci_access`): GitHub's OIDC provider and one
  deploy role per environment (pull requests, staging, production).
"""
