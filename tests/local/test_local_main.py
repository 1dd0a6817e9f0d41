"""`python -m local`'s wait for a stop signal, in-process (the whole CLI runs in test_local_stack)."""

from __future__ import annotations

import signal
import sys
import threading
import time

from local.__main__ import wait_for_stop

FAILSAFE_SECONDS = 30  # only ends the test if the signal never wakes the main thread


def test_a_signal_taken_by_another_thread_wakes_the_waiting_main_thread():
    """The kernel may give SIGTERM / Ctrl-C to any of the stack's threads. Here it goes, every time,
    to another thread than the main one; the main thread must still run the handler and stop (it
    used to sleep on until something else woke it)."""
    stop = threading.Event()
    handled = []
    woken_by_failsafe = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        handled.append(threading.current_thread() is threading.main_thread())
        stop.set()

    def signal_from_another_thread() -> None:
        main = threading.main_thread().ident
        while sys._current_frames()[main].f_code.co_name not in ("wait_for_stop", "wait"):
            time.sleep(0.01)  # until the main thread is in the wait, not on its way there
        time.sleep(0.2)  # and asleep in it: a signal the main thread meets while running is no test
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR2)  # taken by this thread
        if not stop.wait(FAILSAFE_SECONDS):
            woken_by_failsafe.set()
            stop.set()

    previous = signal.signal(signal.SIGUSR2, on_signal)
    try:
        other = threading.Thread(target=signal_from_another_thread)
        other.start()
        wait_for_stop(stop)
        other.join()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert not woken_by_failsafe.is_set(), "the main thread slept through a signal another thread took"
    assert handled == [True]  # the handler ran once, in the main thread
