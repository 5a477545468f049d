"""Crypt4GH (GA4GH file encryption) for the node: its key pair and its streams.

The format and its ciphers are the ``crypt4gh`` package's (the GA4GH
reference implementation); this package holds only what the node adds around
it: where its keys live and how they are unlocked (``keys``), and the
segment arithmetic, header handling and random-access decryption the inbox,
the archive and the data plane share (``stream``).
"""

import logging

# The crypt4gh package logs session keys and secret keys at DEBUG level: whatever
# the node's log level, its logger says nothing below WARNING.
logging.getLogger("crypt4gh").setLevel(logging.WARNING)
