"""LocalStack runtime hook: the gateway never closes an idle keep-alive connection.

LocalStack's gateway (Twisted) closes a keep-alive connection after 60 s without a request.
LocalStack's own clients keep their connections in pools with no idle limit, and some of
them never retry: Step Functions assumes a state machine's role before every task through
one cached STS client with `total_max_attempts=1`. A request sent on a pooled connection in
the same ~100 ms in which the gateway closes it (measured: -84..+56 ms around 60 s of idle
on 2 loaded cores) fails with botocore's ConnectionClosedError, "Connection was closed
before we received a valid response from endpoint URL", which Step Functions reports as a
task failure named `Exception`, outside every Retry. It happens when a burst of tasks
reuses a connection that sat idle for about a minute, e.g. when a search follows a test
that used ten connections at once. With no idle timeout on the server, a pooled connection
is closed only by its client, so there is no window left.
"""

from __future__ import annotations

import logging

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)


def disable_idle_timeout(gateway_class: type) -> None:
    """Make every connection of `gateway_class` (a twisted Site) start with no idle timeout."""
    if getattr(gateway_class, "_haq_no_idle_timeout", False):
        return
    original_init = gateway_class.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        # Site.buildProtocol copies timeOut to each HTTPChannel; None means no idle timer.
        self.timeOut = None

    gateway_class.__init__ = __init__
    gateway_class._haq_no_idle_timeout = True


@hooks.on_runtime_create()
def haq_keep_idle_connections_open() -> None:
    from rolo.serving.twisted import TwistedGateway

    disable_idle_timeout(TwistedGateway)
    LOG.info("haq: the gateway keeps idle keep-alive connections open (no 60 s idle close)")
