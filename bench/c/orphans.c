/* orphans: the orphan-storm workload, run as the child of the init under
 * test (PID 1 of a fresh PID namespace). Driven by lines on stdin, answers
 * on stdout:
 *   -> "ready"
 *   <- "storm N"   make N orphans as fast as possible: start a child (vfork)
 *                  that forks a grandchild and exits; the grandchild exits at
 *                  once and is reparented to PID 1, which must reap it.
 *   -> "done NS R" all N grandchildren have exited (NS: time taken; R: forks
 *                  that failed for want of a pid and were tried again)
 *   <- "exit"      exit 0
 * Every read is bounded (60 s); on a timeout or EOF the workload exits 3. */
#include "common.h"
#include <sys/syscall.h>

/* Starts one orphan: a vfork child that forks a grandchild and exits at
 * once. vfork: the intermediate shares our memory until it exits, so only the
 * grandchild pays for a copy of the address space. In the vfork child only
 * raw system calls are made: clone (a plain fork without libc's bookkeeping)
 * and exit_group, in both processes. The grandchild inherits the pipe's
 * write end and holds it until it exits. Returns the intermediate's pid. */
static pid_t __attribute__((noinline)) orphan(void)
{
    pid_t pid = vfork();
    if (pid == 0) {
        /* The intermediate exits 1 when it could not fork (no pid left). */
        long r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
        syscall(SYS_exit_group, r < 0 ? 1 : 0);
    }
    return pid;
}

static int storm(long n, int64_t *took, long *retried)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    int64_t t0 = now_ns();
    long failed = 0;
    for (long i = 0; i < n; i++) {
        pid_t pid = orphan();
        int st = 0;
        if (pid > 0)
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            /* Out of pids (or memory) for a moment: try that one again. */
            if (pid < 0 && errno != EAGAIN && errno != EINTR && errno != ENOMEM)
                return -1;
            if (++failed > 1000000) {
                errno = EAGAIN;
                return -1;
            }
            i--;
            usleep(100);
        }
    }
    /* EOF once every grandchild (each holding the write end) has exited. */
    close(fds[1]);
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    char c;
    for (;;) {
        int r = poll(&p, 1, 60000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t got = read(fds[0], &c, 1);
        if (got == 0 || (got < 0 && errno != EINTR))
            break;
    }
    close(fds[0]);
    *took = now_ns() - t0;
    *retried = failed;
    return 0;
}

int main(void)
{
    char line[128];
    say("ready\n");
    for (;;) {
        if (read_line(0, line, sizeof line, 60000) < 0)
            return 3;
        long n;
        if (sscanf(line, "storm %ld", &n) == 1) {
            int64_t took = 0;
            long retried = 0;
            if (storm(n, &took, &retried) < 0) {
                say("error %s\n", strerror(errno));
                return 1;
            }
            say("done %lld %ld\n", (long long)took, retried);
        } else if (strcmp(line, "exit") == 0) {
            return 0;
        }
    }
}
