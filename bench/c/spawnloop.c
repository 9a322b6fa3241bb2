/* spawnloop N COMMAND [ARG...]: posix_spawn COMMAND N times, waitpid each,
 * print "<total ns> <failures>" on stdout. The children get /dev/null as
 * stdin, stdout and stderr. */
#include "common.h"
#include <spawn.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: spawnloop N COMMAND [ARG...]\n");
        return 2;
    }
    long n = atol(argv[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    long failures = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int rc = posix_spawn(&pid, argv[2], &fa, NULL, argv + 2, environ);
        if (rc != 0) {
            fprintf(stderr, "spawnloop: posix_spawn %s: %s\n", argv[2], strerror(rc));
            return 1;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0) {
            if (errno != EINTR) {
                perror("spawnloop: waitpid");
                return 1;
            }
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failures++;
    }
    int64_t t1 = now_ns();
    printf("%lld %ld\n", (long long)(t1 - t0), failures);
    return 0;
}
