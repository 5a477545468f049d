"""Fetching a remote workflow document or input file for a WES run, at submit.

The engine never fetches anything itself (a run's sandbox has no network), so
the node fetches what a run needs from the network when the run is submitted
and stores it in the run directory. Each fetch:

* checks the URL with :func:`server.wes.inputs.check_remote_url` (http(s), a
  host on ``wes_url_allowlist``, resolving only to public addresses);
* connects to exactly the address that was checked (the TCP connection goes to
  that IP; TLS still verifies the certificate against the host name), so a DNS
  answer that changes between the check and the connection (DNS rebinding)
  cannot send the request elsewhere;
* never follows a redirect by itself: each ``Location`` is a new hop, checked
  the same way, up to ``MAX_HOPS``;
* ignores proxy settings of the environment (a proxy would connect for us);
* stops reading past ``limit`` bytes.

Why by hand: requests (used here, through its transport adapter hook) follows
redirects and resolves names itself; pinning the checked address and
re-checking every hop is what no library does for us.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from server.errors import InvalidInput, PayloadTooLarge
from server.settings import Settings

MAX_HOPS = 5
TIMEOUT = (10, 60)  # connect, read (seconds)
CHUNK = 1 << 16
CA_BUNDLE: str | None = None  # None: the system's CA certificates


class _PinnedAdapter(HTTPAdapter):
    """Connect to one checked IP address whatever the URL's host name says."""

    def __init__(self, address: str):
        super().__init__(max_retries=0)
        self.address = address

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        name = host_params["host"]
        host_params = {**host_params, "host": self.address.strip("[]")}
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def _checked_address(
    settings: Settings, url: str, what: str, resolve: Callable[[str], list[str]] | None
) -> str:
    """The address to connect to for ``url``, after every check of check_remote_url."""
    from server.wes import inputs

    seen: list[str] = []

    def remember(host: str) -> list[str]:
        found = (resolve or inputs._resolve)(host)
        seen[:] = list(found)
        return found

    inputs.check_remote_url(settings, url, what=what, resolve=remember)
    host = (urlsplit(url).hostname or "").strip("[]")
    return seen[0] if seen else host  # an IP literal host is its own address


def fetch(
    settings: Settings,
    url: str,
    *,
    what: str,
    limit: int,
    resolve: Callable[[str], list[str]] | None = None,
    accept: str = "*/*",
) -> tuple[str, bytes]:
    """(final URL, body) of ``url``, every hop checked; InvalidInput otherwise."""
    current = url.partition("#")[0]
    for hop in range(MAX_HOPS + 1):
        try:
            address = _checked_address(settings, current, what, resolve)
        except InvalidInput as exc:
            if hop == 0:
                raise
            raise InvalidInput(
                f"{exc.args[0] if exc.args else exc} (reached by a redirect from {url})"
            ) from None
        with requests.Session() as session:
            session.trust_env = False  # no proxy from the environment, no .netrc
            session.verify = CA_BUNDLE or True
            session.mount("http://", _PinnedAdapter(address))
            session.mount("https://", _PinnedAdapter(address))
            try:
                # (the connection goes to an address: name the site in Host, as DNS would)
                resp = session.get(
                    current,
                    allow_redirects=False,
                    stream=True,
                    timeout=TIMEOUT,
                    headers={
                        "Accept": accept,
                        "User-Agent": "genomeport-wes",
                        "Host": urlsplit(current).netloc.rpartition("@")[2],
                    },
                )
            except requests.RequestException as exc:
                raise InvalidInput(
                    f"{what}: could not fetch {current}: {type(exc).__name__}"
                ) from None
            with resp:
                if resp.is_redirect:
                    target = resp.headers.get("Location", "")
                    if not target:
                        raise InvalidInput(f"{what}: {current} redirects without a Location")
                    current = urljoin(current, target).partition("#")[0]
                    continue
                if resp.status_code != 200:
                    raise InvalidInput(f"{what}: {current} answered HTTP {resp.status_code}")
                body = bytearray()
                for block in resp.iter_content(CHUNK):
                    body += block
                    if len(body) > limit:
                        raise PayloadTooLarge(f"{what}: {current} is larger than {limit} bytes")
                return current, bytes(body)
    raise InvalidInput(f"{what}: {url} redirects more than {MAX_HOPS} times")
