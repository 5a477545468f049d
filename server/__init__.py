"""genomeport: a GA4GH node (htsget, Beacon v2, WES, DRS) for national genome data."""

import warnings

__version__ = "0.1.0"

# Connexion imports Starlette's test client at import time, and Starlette 1.10
# warns there about its httpx transport; the node never uses the test client,
# so every worker would print that warning at start-up for nothing. Set here,
# before anything of the package imports Connexion.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")


def create_app(settings, **kwargs):
    """Build the node (see ``server.web.app.create_app``)."""
    from server.web.app import create_app as _create_app

    return _create_app(settings, **kwargs)
