"""Reception of Crypt4GH files: the submitters' inbox and the ingest pipeline.

``service`` is the inbox API's logic (resumable chunked uploads, declared
checksums, the submitter role), ``ingest`` the worker that turns an upload
into an archived, registered file, ``rotation`` the move of the archive to a
new node key, ``cli`` the ``genomeport crypt4gh`` and ``ingest`` commands.
"""
