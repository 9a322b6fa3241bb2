/* waitinit [--] COMMAND [ARG...]: the reference PID 1, a bare wait() loop.
 * Starts COMMAND, reaps everything, exits with COMMAND's status when it
 * exits. No signal forwarding, no events: the floor for reaping cost. */
#include "common.h"

int main(int argc, char **argv)
{
    int i = 1;
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (i >= argc)
        return 2;
    pid_t child = fork();
    if (child < 0)
        return 126;
    if (child == 0) {
        execvp(argv[i], argv + i);
        _exit(127);
    }
    for (;;) {
        int st;
        pid_t p = wait(&st);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p == child)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
}
