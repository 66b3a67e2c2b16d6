"""Which region names a request may be signed for.

By default, AWS's own: every region of every partition that the installed botocore knows for KMS, read from
its endpoint data once per process. So a typo such as ``us-east1`` is refused the way AWS refuses a request
scoped to a region that does not exist, instead of silently opening an empty account, and a newer botocore
brings new regions with it. An operator who names ``--regions`` serves exactly those (private names such as
``onprem-1`` included).
"""

from __future__ import annotations

import functools


@functools.cache
def aws_regions() -> frozenset[str]:
    """Every region name AWS serves KMS in, across partitions (standard, China, GovCloud, isolated)."""
    import botocore.session

    session = botocore.session.get_session()
    names: set[str] = set()
    for partition in session.get_available_partitions():
        names.update(session.get_available_regions("kms", partition_name=partition))
    return frozenset(names)
