"""The emulator's listener stops at once, yet never under a request it is still answering:
that request reads the emulator's database, which the emulator closes right after the stop."""

from __future__ import annotations

import http.client
import threading

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from airflow_cortex.emulator.listener import Listener


def _slow_app(entered: threading.Event, leave: threading.Event, answered: list[str]) -> Starlette:
    def slow(request):  # a sync endpoint: Starlette runs it in a worker thread, as fakesnow's are
        entered.set()
        leave.wait(5)
        answered.append("done")
        return PlainTextResponse("late answer")

    return Starlette(routes=[Route("/slow", slow), Route("/quick", lambda request: PlainTextResponse("ok"))])


def test_a_stop_waits_for_the_answer_in_flight_and_not_for_idle_connections():
    entered, leave, answered = threading.Event(), threading.Event(), []
    listener = Listener(_slow_app(entered, leave, answered), "127.0.0.1", 0, None)
    idle = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=10)
    idle.request("GET", "/quick")
    assert idle.getresponse().read() == b"ok"  # kept alive, and idle from here on

    replies: list[bytes] = []

    def ask() -> None:
        slow = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=10)
        slow.request("GET", "/slow")
        replies.append(slow.getresponse().read())

    asker = threading.Thread(target=ask)
    asker.start()
    assert entered.wait(5)
    threading.Timer(0.3, leave.set).start()
    listener.stop()
    assert answered == ["done"]  # the handler had finished when stop returned
    asker.join(5)
    assert replies == [b"late answer"]


def test_a_stopped_listener_refuses_connections():
    listener = Listener(Starlette(), "127.0.0.1", 0, None)
    listener.stop()
    refused = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=5)
    try:
        refused.request("GET", "/")
        refused.getresponse()
    except OSError:
        return
    raise AssertionError("the stopped listener still answered")
