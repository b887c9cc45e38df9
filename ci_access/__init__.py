"""What GitHub Actions needs to deploy and test stages without long-lived keys.

A separate CDK app (``ci_access_app.py``), deployed once per account and region by a
person: ``make ci-access GITHUB_REPO=owner/name``. It is not a pattern, so the stage
never deploys it.
"""
