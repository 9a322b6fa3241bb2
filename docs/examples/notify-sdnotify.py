#!/usr/bin/env python3
"""A service that tells the shim when it is ready and that it is still alive,
with the sdnotify package (pip install sdnotify). Run it as
    shim --ready-file /run/shim/ready --watchdog 2s -- python3 notify-sdnotify.py
"""
import os
import signal
import time

import sdnotify

notifier = sdnotify.SystemdNotifier()  # reads NOTIFY_SOCKET, which --notify sets
period = int(os.environ.get("WATCHDOG_USEC", "0")) / 1e6  # set by --watchdog
stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)

notifier.notify("STATUS=starting")
time.sleep(0.5)  # open the database, bind the port, ...
notifier.notify("READY=1\nSTATUS=serving")
while not stopping:
    notifier.notify("WATCHDOG=1")  # still alive: the watchdog starts again
    time.sleep(period / 2 if period else 1)  # a unit of work
notifier.notify("STOPPING=1")
time.sleep(0.2)  # finish the requests in flight
