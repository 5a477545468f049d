"""The node's HTTP layer: the only package (with ``handlers``) that knows a web framework.

``app`` builds the node, ``apis`` is the table of served APIs, ``ops`` the
outermost middleware, ``dataplane`` the signed-URL byte server, ``context``
the request context handlers read, ``errors`` the error shape of each API,
``validation`` the request guards, ``landing`` and ``docs`` the pages at ``/``
and ``/docs``, ``serve`` and ``worker`` the gunicorn server and its worker, and
``accel`` the switchable fast paths that use dependencies' internals.
"""
