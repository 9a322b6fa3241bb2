#!/usr/bin/env python3
"""The same service with nothing but the standard library: sd_notify is one
datagram on a unix socket. Run it as
    shim --ready-file /run/shim/ready --watchdog 2s -- python3 notify-socket.py
"""
import os
import signal
import socket
import time


def notify(message):
    """Sends one sd_notify message; does nothing without NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket, as the shim's is
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), address)


period = int(os.environ.get("WATCHDOG_USEC", "0")) / 1e6  # set by --watchdog
stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)

notify("STATUS=starting")
time.sleep(0.5)  # open the database, bind the port, ...
notify("READY=1\nSTATUS=serving")
while not stopping:
    notify("WATCHDOG=1")  # still alive: the watchdog starts again
    time.sleep(period / 2 if period else 1)  # a unit of work
notify("STOPPING=1")
time.sleep(0.2)  # finish the requests in flight
