"""Loopback fakes of the external services the project talks to.

Each fake is a real HTTP server on 127.0.0.1 (``http.server`` in a background thread) that
speaks the subset of the service's HTTP API its official Python client uses, so tests run the
real client end to end without network access.

- :mod:`replyassets_tests.fakes.apify_server`: the Apify API used by ``apify-client`` 3.4
  (actor runs, run status, dataset items), scriptable per search term and with fault injection.
"""

from replyassets_tests.fakes.apify_server import (
    FakeApifyServer,
    Fault,
    RecordedRequest,
    RecordedRun,
)

__all__ = ["FakeApifyServer", "Fault", "RecordedRequest", "RecordedRun"]
