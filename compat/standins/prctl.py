"""A stand-in for python-prctl, written for the shim's peer-suite runs.

Used only when the real python-prctl (which needs libcap headers to build)
cannot be installed. It covers what tini's test/subreaper-proxy.py calls:
set_child_subreaper / get_child_subreaper, plus set_pdeathsig /
get_pdeathsig and set_name / get_name, through libc's prctl(2) via ctypes.
"""
import ctypes
import ctypes.util
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.prctl.restype = ctypes.c_int
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong, ctypes.c_ulong]

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_SET_NAME = 15
PR_GET_NAME = 16
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def _call(option, arg2=0, arg3=0, arg4=0, arg5=0):
    ret = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def set_child_subreaper(flag):
    _call(PR_SET_CHILD_SUBREAPER, 1 if flag else 0)


def get_child_subreaper():
    value = ctypes.c_int(0)
    _call(PR_GET_CHILD_SUBREAPER, ctypes.addressof(value))
    return bool(value.value)


def set_pdeathsig(signum):
    _call(PR_SET_PDEATHSIG, int(signum))


def get_pdeathsig():
    value = ctypes.c_int(0)
    _call(PR_GET_PDEATHSIG, ctypes.addressof(value))
    return value.value


def set_name(name):
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _call(PR_SET_NAME, ctypes.addressof(buf))


def get_name():
    buf = ctypes.create_string_buffer(16)
    _call(PR_GET_NAME, ctypes.addressof(buf))
    return buf.value.decode(errors="replace")
