"""genomeport: a GA4GH node (htsget, Beacon v2, WES, DRS) for national genome data."""

__version__ = "0.1.0"


def create_app(settings):
    """Build the node (see ``server.app.create_app``)."""
    from server.app import create_app as _create_app

    return _create_app(settings)
