/*
 * stray: processes that treat an init badly, for tests/trust.rs.
 *
 * Compiled at test time by tests/common/mod.rs with `cc -pthread` (and, for
 * the missing-loader case, with a dynamic linker that does not exist). It
 * uses raw system calls for everything about signals, so signals 32 and 33
 * (which glibc keeps for itself) and 34 behave the same whatever the C
 * library. Like kid, every mode that waits gives up after a lifetime
 * (default 60 s, `-T SECS`), and prints what it does one line per write(2).
 *
 *   stray [-T SECS] MODE ARGS...
 *
 *   record [-n TAG] -o FILE [-x SIG]...
 *                     block signals 1-64 (the kernel's whole set), print
 *                     "ready TAG pid=P ppid=PP pgid=G", then take each
 *                     signal with rt_sigtimedwait, writing "sig NUM" to
 *                     FILE; exit 0 on a signal given with -x.
 *   dfl [-n TAG]      every disposition default, nothing blocked; print
 *                     "ready TAG ...", then sleep for the lifetime.
 *   zombie-leader [-n TAG] [-i SIG]...
 *                     ignore SIGs, start a thread, and end the main thread
 *                     with pthread_exit; the thread waits until /proc shows
 *                     the process as a zombie (Z), prints "ready TAG ...",
 *                     and sleeps for the lifetime.
 *   walk [-n TAG] [-i SIG]... [-u USEC]
 *                     ignore SIGs, print "ready TAG ...", then keep moving:
 *                     fork, the parent exits, the child sleeps USEC
 *                     microseconds (default 200) and does it again, for the
 *                     lifetime. The process group stays the same.
 *   churn N [-i SIG]...
 *                     ignore SIGs, become N processes (the first forks N-1,
 *                     all in one group), each forking children that live
 *                     0.5 ms and reaping them, for the lifetime. The first
 *                     prints "ready churn ..." once all N run.
 *   reuse -o FILE [-p]
 *                     a bystander: for the lifetime, fork children that
 *                     block every signal, live about 2 ms taking any signal
 *                     that comes, and exit 0; reap each. Every signal a
 *                     child or this process takes is written to FILE as
 *                     "sig NUM pid=P", every child that dies of a signal as
 *                     "killed NUM pid=P". With -p, each child takes the pid
 *                     of a process that has just gone: find the newest child
 *                     of another `stray` process in /proc, wait (5 ms at
 *                     most) until it is gone, write its pid - 1 to
 *                     /proc/sys/kernel/ns_last_pid, fork. At the end:
 *                     "bystanders N reused=R pinned=0|1" to FILE (R: children
 *                     that got the pid they were after).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double lifetime = 60.0;

static void die(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)!write(2, "stray: ", 7);
    (void)!write(2, buf, n);
    _exit(98);
}

static void say_fd(int fd, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)!write(fd, buf, n);
}
#define say(...) say_fd(1, __VA_ARGS__)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_secs(double secs) {
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void ready(const char *tag) {
    say("ready %s pid=%d ppid=%d pgid=%d", tag, (int)getpid(), (int)getppid(),
        (int)getpgrp());
}

/* ---- signals, through the kernel's interface ---------------------------- */

typedef unsigned long long kset;
#define BIT(sig) (1ULL << ((sig) - 1))
#define ALL_SIGNALS (~0ULL & ~BIT(SIGKILL) & ~BIT(SIGSTOP))

struct ksigaction {
    unsigned long handler;
    unsigned long flags;
    unsigned long restorer;
    kset mask;
};

static void k_setmask(kset set) {
    if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &set, NULL, sizeof set))
        die("rt_sigprocmask: %s", strerror(errno));
}

/* handler: 0 default, 1 ignore */
static void k_disposition(int sig, unsigned long handler) {
    struct ksigaction a = {handler, 0, 0, 0};
    if (syscall(SYS_rt_sigaction, sig, &a, NULL, sizeof(kset)))
        die("rt_sigaction %d: %s", sig, strerror(errno));
}

/* A signal from `set`, waiting at most `secs`; 0 on timeout. */
static int k_take(kset set, double secs, siginfo_t *info) {
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    for (;;) {
        long r = syscall(SYS_rt_sigtimedwait, &set, info, &ts, sizeof set);
        if (r > 0) return (int)r;
        if (errno == EAGAIN) return 0;
        if (errno != EINTR) die("rt_sigtimedwait: %s", strerror(errno));
    }
}

static int parse_sig(const char *s) {
    static const char *names[32] = {
        NULL,     "HUP",  "INT",    "QUIT", "ILL",   "TRAP", "ABRT", "BUS",
        "FPE",    "KILL", "USR1",   "SEGV", "USR2",  "PIPE", "ALRM", "TERM",
        "STKFLT", "CHLD", "CONT",   "STOP", "TSTP",  "TTIN", "TTOU", "URG",
        "XCPU",   "XFSZ", "VTALRM", "PROF", "WINCH", "IO",   "PWR",  "SYS",
    };
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end && n >= 1 && n <= 64) return (int)n;
    if (strncasecmp(s, "SIG", 3) == 0) s += 3;
    for (int i = 1; i < 32; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    die("unknown signal %s", s);
    return 0;
}

/* `-n TAG`, `-i SIG`, `-o FILE`, `-x SIG`, `-u USEC`, `-p`, in any order. */
struct opts {
    const char *tag, *file;
    kset ignore, exit_on;
    long usec;
    int pin;
};

static struct opts parse_opts(int argc, char **argv, const char *tag) {
    struct opts o = {tag, NULL, 0, 0, 200, 0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-p") == 0) {
            o.pin = 1;
            continue;
        }
        if (!v) die("option %s needs a value", a);
        if (strcmp(a, "-n") == 0) o.tag = v;
        else if (strcmp(a, "-o") == 0) o.file = v;
        else if (strcmp(a, "-i") == 0) o.ignore |= BIT(parse_sig(v));
        else if (strcmp(a, "-x") == 0) o.exit_on |= BIT(parse_sig(v));
        else if (strcmp(a, "-u") == 0) o.usec = atol(v);
        else die("bad option %s", a);
        i++;
    }
    for (int s = 1; s <= 64; s++)
        if (o.ignore & BIT(s)) k_disposition(s, 1);
    return o;
}

static int open_log(const char *file) {
    if (!file) die("-o FILE missing");
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) die("open %s: %s", file, strerror(errno));
    return fd;
}

/* ---- modes -------------------------------------------------------------- */

static int mode_record(int argc, char **argv) {
    struct opts o = parse_opts(argc, argv, "-");
    int out = open_log(o.file);
    k_setmask(ALL_SIGNALS);
    ready(o.tag);
    double deadline = now() + lifetime;
    for (;;) {
        double left = deadline - now();
        if (left <= 0) return 99;
        siginfo_t info;
        int sig = k_take(ALL_SIGNALS, left, &info);
        if (!sig) continue;
        say_fd(out, "sig %d", sig);
        if (o.exit_on & BIT(sig)) return 0;
    }
}

static int mode_dfl(int argc, char **argv) {
    struct opts o = parse_opts(argc, argv, "-");
    for (int s = 1; s <= 64; s++)
        if (s != SIGKILL && s != SIGSTOP) k_disposition(s, 0);
    k_setmask(0);
    ready(o.tag);
    sleep_secs(lifetime);
    return 0;
}

static const char *zl_tag;

static char proc_state(void) {
    char buf[512];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

static void *zl_thread(void *arg) {
    (void)arg;
    double deadline = now() + 10;
    while (proc_state() != 'Z') {
        if (now() > deadline) die("zombie-leader: the main thread did not exit");
        sleep_secs(0.002);
    }
    ready(zl_tag);
    sleep_secs(lifetime);
    _exit(0);
    return NULL;
}

static int mode_zombie_leader(int argc, char **argv) {
    struct opts o = parse_opts(argc, argv, "zl");
    zl_tag = o.tag;
    pthread_t t;
    if (pthread_create(&t, NULL, zl_thread, NULL)) die("pthread_create");
    pthread_exit(NULL);
}

static int mode_walk(int argc, char **argv) {
    struct opts o = parse_opts(argc, argv, "walk");
    double deadline = now() + lifetime;
    ready(o.tag);
    while (now() < deadline) {
        pid_t p = fork();
        if (p > 0) _exit(0);
        if (p < 0) {
            if (errno != EAGAIN) die("fork: %s", strerror(errno));
        }
        sleep_secs((double)o.usec / 1e6);
    }
    return 0;
}

static int mode_churn(int argc, char **argv) {
    if (argc < 1) die("churn: N missing");
    int n = atoi(argv[0]);
    struct opts o = parse_opts(argc - 1, argv + 1, "churn");
    int first = 1;
    for (int i = 1; i < n; i++) {
        pid_t p = fork();
        if (p < 0) die("fork: %s", strerror(errno));
        if (p == 0) {
            first = 0;
            break;
        }
    }
    if (first) ready(o.tag);
    double deadline = now() + lifetime;
    while (now() < deadline) {
        pid_t c = fork();
        if (c == 0) {
            sleep_secs(0.0005);
            _exit(0);
        }
        if (c < 0) {
            sleep_secs(0.001);
            continue;
        }
        while (waitpid(c, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    /* The first one reaps the others (they are its children). */
    if (first)
        while (wait(NULL) > 0 || errno == EINTR) {
        }
    return 0;
}

/* The newest process that is a child of a `stray` process other than this
 * one (a churn child, in practice), or 0. */
static pid_t newest_target(void) {
    static struct { int pid, ppid, stray; } procs[4096];
    int n = 0;
    pid_t me = getpid();
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0) continue;
        buf[len] = 0;
        char *close_paren = strrchr(buf, ')');
        if (!close_paren) continue;
        char state;
        int ppid;
        if (sscanf(close_paren + 2, "%c %d", &state, &ppid) != 2) continue;
        procs[n].pid = pid;
        procs[n].ppid = ppid;
        procs[n].stray = strstr(buf, " (stray) ") != NULL && state != 'Z';
        n++;
    }
    closedir(d);
    pid_t best = 0;
    for (int i = 0; i < n; i++) {
        if (!procs[i].stray || procs[i].pid == me || procs[i].ppid == me) continue;
        for (int j = 0; j < n; j++)
            if (procs[j].pid == procs[i].ppid && procs[j].stray && procs[j].pid != me &&
                procs[i].pid > best)
                best = procs[i].pid;
    }
    return best;
}

static int pin_last_pid(int last) {
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%d", last);
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int ok = write(fd, buf, n) == n;
    close(fd);
    return ok;
}

static int mode_reuse(int argc, char **argv) {
    struct opts o = parse_opts(argc, argv, "reuse");
    int out = open_log(o.file);
    kset watch = ALL_SIGNALS & ~BIT(SIGCHLD);
    k_setmask(watch);
    int pinned = 0;
    long made = 0, reused = 0;
    double deadline = now() + lifetime;
    while (now() < deadline) {
        pid_t want = 0;
        if (o.pin) {
            /* Wait for a churn child to go, then take its pid at once. */
            pid_t target = newest_target();
            if (!target) {
                sleep_secs(0.0002);
                continue;
            }
            char path[64];
            snprintf(path, sizeof path, "/proc/%d", (int)target);
            double until = now() + 0.005;
            while (access(path, F_OK) == 0 && now() < until) {
            }
            if (access(path, F_OK) == 0) continue;
            if (pin_last_pid(target - 1)) pinned = 1;
            want = target;
        }
        pid_t c = fork();
        if (c < 0) {
            sleep_secs(0.001);
            continue;
        }
        if (c == 0) {
            double end = now() + 0.002;
            siginfo_t info;
            for (double left; (left = end - now()) > 0;) {
                int sig = k_take(watch, left, &info);
                if (sig) say_fd(out, "sig %d pid=%d", sig, (int)getpid());
            }
            _exit(0);
        }
        made++;
        if (c == want) reused++;
        int st;
        while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
        }
        if (WIFSIGNALED(st)) say_fd(out, "killed %d pid=%d", WTERMSIG(st), (int)c);
        siginfo_t info;
        int sig;
        while ((sig = k_take(watch, 0, &info)) > 0)
            say_fd(out, "sig %d pid=%d", sig, (int)getpid());
    }
    say_fd(out, "bystanders %ld reused=%ld pinned=%d", made, reused, pinned);
    return 0;
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i + 1 < argc && strcmp(argv[i], "-T") == 0; i += 2) lifetime = atof(argv[i + 1]);
    if (i >= argc) die("usage: stray [-T SECS] MODE ARGS...");
    const char *mode = argv[i];
    int rc = argc - i - 1;
    char **ra = argv + i + 1;
    if (strcmp(mode, "record") == 0) return mode_record(rc, ra);
    if (strcmp(mode, "dfl") == 0) return mode_dfl(rc, ra);
    if (strcmp(mode, "zombie-leader") == 0) return mode_zombie_leader(rc, ra);
    if (strcmp(mode, "walk") == 0) return mode_walk(rc, ra);
    if (strcmp(mode, "churn") == 0) return mode_churn(rc, ra);
    if (strcmp(mode, "reuse") == 0) return mode_reuse(rc, ra);
    if (strcmp(mode, "true") == 0) return 0;
    die("unknown mode %s", mode);
    return 98;
}
