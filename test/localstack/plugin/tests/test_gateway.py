"""The gateway hook: connections of the patched twisted Site have no idle timeout."""
import unittest

from rolo.gateway import Gateway
from rolo.serving.twisted import TwistedGateway
from twisted.internet.address import IPv4Address

from haq_localstack.gateway import disable_idle_timeout


def idle_timeout_of(site_class: type):
    """The idle timeout a new connection of this Site starts with (seconds, None = none)."""
    site = site_class(Gateway())
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 12345))
    return channel.timeOut


class DisableIdleTimeoutTest(unittest.TestCase):
    def test_twisted_closes_idle_connections_after_60_s_by_default(self):
        class Unpatched(TwistedGateway):
            pass

        self.assertEqual(idle_timeout_of(Unpatched), 60)

    def test_patched_gateway_connections_have_no_idle_timeout(self):
        class Patched(TwistedGateway):
            pass

        disable_idle_timeout(Patched)
        disable_idle_timeout(Patched)  # idempotent
        self.assertIsNone(idle_timeout_of(Patched))


if __name__ == "__main__":
    unittest.main()
