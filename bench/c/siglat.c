/* siglat PID COUNT GAP_US: COUNT times, read CLOCK_MONOTONIC, kill(PID,
 * SIGUSR1), then wait (at most 1 s) for the receiver's line on stdin with
 * its time of receipt; print the difference in ns, one per line ("lost" for
 * a signal that never arrived). GAP_US between signals, so none coalesce:
 * each one is received before the next is sent. */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: siglat PID COUNT GAP_US\n");
        return 2;
    }
    pid_t pid = atoi(argv[1]);
    long count = atol(argv[2]);
    long gap = atol(argv[3]);
    char line[64];
    for (long i = 0; i < count; i++) {
        int64_t t0 = now_ns();
        if (kill(pid, SIGUSR1) < 0) {
            perror("siglat: kill");
            return 1;
        }
        if (read_line(0, line, sizeof line, 1000) < 0) {
            printf("lost\n");
        } else {
            long long t1 = atoll(line);
            printf("%lld\n", t1 - (long long)t0);
        }
        usleep(gap);
    }
    return 0;
}
