"""Test-only name resolution for a node started by tests/integration/test_wes_document_inputs.py.

That test puts this directory on the node's PYTHONPATH and names, in
WES_TEST_HOSTS (``name=address,...``), test hosts served by local HTTP
servers; WES_TEST_PUBLIC lists which of those addresses count as public. So
an allow-listed test host can stand for a public site while every other rule
(allow-list, private addresses, redirects, pinning) runs unchanged. Nothing
here is loaded by the node outside that test.
"""

import os

_HOSTS = dict(
    item.split("=", 1) for item in os.environ.get("WES_TEST_HOSTS", "").split(",") if "=" in item
)
_PUBLIC = {a for a in os.environ.get("WES_TEST_PUBLIC", "").split(",") if a}

if _HOSTS:
    from server.wes import inputs as _inputs

    _real_resolve, _real_public = _inputs._resolve, _inputs._public_ip
    _inputs._resolve = lambda host: [_HOSTS[host]] if host in _HOSTS else _real_resolve(host)
    _inputs._public_ip = lambda addr: addr in _PUBLIC or _real_public(addr)
