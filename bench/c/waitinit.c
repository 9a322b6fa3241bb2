/* waitinit [--comm] [--] COMMAND [ARG...]: the reference PID 1, a bare
 * wait loop. Starts COMMAND, reaps everything, exits with COMMAND's status
 * when it exits. No signal forwarding, no events: the floor for reaping cost.
 *
 * --comm: also read each process's name from /proc/PID/comm while it is
 * still a zombie (found with WNOWAIT, then reaped), and do nothing with it:
 * the floor for what the shim's exit events are required to say. */
#include "common.h"

/* Reads /proc/PID/comm through the /proc directory descriptor. */
static void read_comm(int proc, pid_t pid)
{
    char path[32], name[64];
    snprintf(path, sizeof path, "%d/comm", (int)pid);
    int fd = openat(proc, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    while (read(fd, name, sizeof name) < 0 && errno == EINTR)
        ;
    close(fd);
}

int main(int argc, char **argv)
{
    int i = 1, comm = 0;
    if (i < argc && strcmp(argv[i], "--comm") == 0) {
        comm = 1;
        i++;
    }
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (i >= argc)
        return 2;
    int proc = -1;
    if (comm && (proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return 1;
    pid_t child = fork();
    if (child < 0)
        return 126;
    if (child == 0) {
        execvp(argv[i], argv + i);
        _exit(127);
    }
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | (comm ? WNOWAIT : 0)) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        pid_t p = si.si_pid;
        if (comm) {
            read_comm(proc, p);
            while (waitid(P_PID, p, &si, WEXITED) < 0)
                if (errno != EINTR)
                    return 1;
        }
        if (p == child)
            return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    }
}
