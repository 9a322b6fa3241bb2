/* sigrecv: blocks SIGUSR1, says "ready", then for every SIGUSR1 taken with
 * sigwaitinfo writes the CLOCK_MONOTONIC time of receipt (ns) as a line.
 * Any other signal has its default action (SIGTERM ends it). */
#include "common.h"

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    say("ready\n");
    for (;;) {
        siginfo_t info;
        if (sigwaitinfo(&set, &info) < 0)
            continue;
        int64_t t = now_ns();
        say("%lld\n", (long long)t);
    }
}
