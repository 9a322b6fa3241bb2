/* Shared helpers for the benchmark workloads (see bench/run). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One whole line on fd 1 with a single write (no stdio buffering). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
__attribute__((unused)) static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n >= (int)sizeof buf)
        n = sizeof buf - 1;
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = write(1, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += w;
    }
}

/* Reads one line from fd into buf, waiting at most timeout_ms in all.
 * Returns its length (without '\n'), or -1 on timeout, EOF or error.
 * Line-at-a-time with a 1-byte read: only for short control lines. */
__attribute__((unused)) static int read_line(int fd, char *buf, int cap, int timeout_ms)
{
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    int n = 0;
    for (;;) {
        int64_t left = (deadline - now_ns()) / 1000000;
        if (left < 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        if (c == '\n') {
            buf[n] = 0;
            return n;
        }
        if (n < cap - 1)
            buf[n++] = c;
    }
}
