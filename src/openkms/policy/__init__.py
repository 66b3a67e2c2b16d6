"""Key policies and IAM identity policies: parse, validate and evaluate them as AWS does.

Pure: no storage, no I/O, no clock. ``operations/`` parses the stored policy texts
(:mod:`~openkms.policy.document`), builds an :class:`~openkms.policy.request.AuthorizationRequest` and calls
:func:`~openkms.policy.evaluate.authorize`. Grants are evaluated by the caller and passed in as a flag.
See docs/policies.md for what is supported and where openkms differs from AWS.
"""
