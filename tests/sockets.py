"""A websocket test client whose consumer handles database connections as it does in a server."""

from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator


class ServerLikeCommunicator(WebsocketCommunicator):
    """Channels' communicator, without its pause of ``close_old_connections``.

    Channels turns connection closing into a no-op while its communicator runs, so a test inside
    one transaction keeps its connection. The socket tests here are transactional: the consumer's
    threads may close their connections after each call, as in a server, instead of leaving one
    checked out of PostgreSQL's pool per test, which starves the pool later in the run.
    """

    send_input = ApplicationCommunicator.send_input
    receive_output = ApplicationCommunicator.receive_output
