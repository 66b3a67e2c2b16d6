"""AWS STS on the KMS endpoint: the query protocol (``sts/protocol.py``), the operations keyed by ``Action``
(``sts/operations.py``) and the one entry point a server calls (``sts/front.py``).

Only GetCallerIdentity is served today: many tools (the AWS CLI's checks, Terraform, test harnesses) call it
before anything else. Roles, AssumeRole and temporary credentials (issue 19) plug into the same registry.
"""
