/*
 * kid: the child process the shim's integration tests run under the shim.
 *
 * Compiled at test time by tests/common/mod.rs with `cc`. Every mode is
 * small and prints what it does on stdout, one line per write(2), so a test
 * can wait for a line instead of sleeping. Every mode that waits gives up
 * after a lifetime (default 60 s, `-T SECS`) so a broken test never leaves
 * a process behind for long.
 *
 *   kid [-C CORE] [-T SECS] MODE ARGS...
 *     -C CORE      set RLIMIT_CORE to CORE (a number of bytes or "unlimited")
 *     -T SECS      lifetime of the waiting modes (default 60)
 *
 *   report                 key=value lines: pid ppid pgid sid tpgid sigblk
 *                          sigign sigcgt fds cwd comm; exit 0
 *   getenv NAME...         NAME=value or NAME unset, one line each; exit 0
 *   exit N                 exit with code N
 *   kill-self SIG          reset SIG to default, unblock it, raise it
 *   sleep SECS             sleep (fractions allowed), exit 0
 *   pause                  sleep for the lifetime, exit 0
 *   ignore [-n TAG] SIG... ignore SIGs, print "ready TAG ...", sleep for
 *                          the lifetime, exit 0
 *   trap [-n TAG] [-o FILE] [-x SIG]... [-e CODE] [-k SIG] [-D MS] SIG...|all
 *                          block SIGs and take them with sigtimedwait, writing
 *                          "sig NUM NAME" per signal to FILE (or stdout);
 *                          prints "ready TAG pid=P ppid=PP pgid=G" first.
 *                          On a signal given with -x: wait MS (-D), then exit
 *                          CODE (-e, default 0) or, with -k, die of SIG.
 *                          At the end of the lifetime: exit 99.
 *   fork [--setsid] [--daemon] [--sep TOKEN] CMD... ::: [CMD2...]
 *                          fork; the child (after setsid with --setsid)
 *                          execs CMD; the parent then execs CMD2 (or exits 0).
 *                          --daemon: double fork; the middle process exits at
 *                          once and the parent reaps it before going on, so
 *                          CMD's process is an orphan of whoever adopts it.
 *                          --sep: split at TOKEN instead of ::: (to nest).
 *   orphans N [-b BATCH] [-s MS]
 *                          make N orphans: intermediates each fork BATCH
 *                          (default 500) children and exit at once; each
 *                          child exits 0 (after MS ms with -s). Prints
 *                          "orphans N done" and exits 0.
 *   intermediate [-n TAG] [-e CODE]
 *                          fork I; I forks G and SIGKILLs itself. G prints
 *                          "grandchild TAG pid=G", waits until it is
 *                          re-parented, prints "adopted TAG pid=G ppid=NEW"
 *                          and exits CODE (default 7). The main process
 *                          reaps I, prints "intermediate TAG pid=I sig=9",
 *                          then waits for SIGTERM/SIGINT and exits 0.
 *   subreaper -o FILE CMD...
 *                          become a child subreaper, run CMD, reap everything
 *                          until no child is left, writing "reaped PID
 *                          code=C" or "reaped PID sig=S" per process to FILE;
 *                          exit with CMD's code (128+N if a signal ended it).
 *   threadspawn CMD...     a second thread forks and execs CMD, prints
 *                          "spawned pid=P tid=T" and exits; the main thread
 *                          joins it, prints "thread gone tid=T", then sleeps
 *                          for the lifetime (the process stays CMD's parent).
 *   exec-with [-i SIG]... [-b SIG]... [-f FD:PATH]... [-F FD:PATH]...
 *             [-c FD]... -- CMD...
 *                          set SIG ignored (-i) or blocked (-b), open PATH
 *                          read-only as FD (-f: inheritable, -F: close-on-
 *                          exec), close FD (-c), then exec CMD.
 *   hexargs                "argc=N", then "arg I len=L fnv=H" per argument
 *                          after argv[0] (H: FNV-1a 64 of its bytes, hex).
 *   hexenv NAME...         "env NAME len=L fnv=H" or "env NAME unset".
 *   hog MB                 allocate and touch MB mebibytes, one at a time
 *                          (printing "hog N" every 16), then exit 0.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double lifetime = 60.0;

/* ---- small utilities ---------------------------------------------------- */

static void die(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)!write(2, "kid: ", 5);
    (void)!write(2, buf, n);
    _exit(98);
}

/* One line, one write(2): lines from several processes never interleave. */
static void say_fd(int fd, const char *fmt, ...) {
    char buf[4096];
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

static void sleep_secs(double secs) {
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- signal names ------------------------------------------------------- */

static const char *std_names[32] = {
    NULL,     "HUP",  "INT",    "QUIT", "ILL",  "TRAP",   "ABRT", "BUS",
    "FPE",    "KILL", "USR1",   "SEGV", "USR2", "PIPE",   "ALRM", "TERM",
    "STKFLT", "CHLD", "CONT",   "STOP", "TSTP", "TTIN",   "TTOU", "URG",
    "XCPU",   "XFSZ", "VTALRM", "PROF", "WINCH", "IO",    "PWR",  "SYS",
};

/* Kernel numbering: realtime signals are 34..64 (glibc keeps 32 and 33). */
#define RT_MIN 34
#define RT_MAX 64

static void sig_name(int sig, char *out, size_t len) {
    if (sig > 0 && sig < 32)
        snprintf(out, len, "SIG%s", std_names[sig]);
    else if (sig >= RT_MIN && sig <= RT_MAX)
        snprintf(out, len, "SIGRTMIN+%d", sig - RT_MIN);
    else
        snprintf(out, len, "SIG%d", sig);
}

static int parse_sig(const char *s) {
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end) return (int)n;
    if (strncasecmp(s, "SIG", 3) == 0) s += 3;
    for (int i = 1; i < 32; i++)
        if (strcasecmp(s, std_names[i]) == 0) return i;
    if (strncasecmp(s, "RTMIN", 5) == 0) return RT_MIN + (s[5] == '+' ? atoi(s + 6) : 0);
    if (strncasecmp(s, "RTMAX", 5) == 0) return RT_MAX - (s[5] == '-' ? atoi(s + 6) : 0);
    die("unknown signal %s", s);
    return 0;
}

/* ---- modes -------------------------------------------------------------- */

static void status_line(const char *key, char *out, size_t len) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    size_t klen = strlen(key);
    snprintf(out, len, "?");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *v = line + klen + 1;
            while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            snprintf(out, len, "%s", v);
        }
    }
    fclose(f);
}

static int mode_report(void) {
    char stat[1024] = {0}, buf[4096];
    int fd = open("/proc/self/stat", O_RDONLY);
    if (fd < 0 || read(fd, stat, sizeof stat - 1) <= 0) die("read /proc/self/stat");
    close(fd);
    /* fields after the ")" that ends comm: state ppid pgrp session tty tpgid */
    char state;
    int ppid, pgid, sid, tty, tpgid;
    if (sscanf(strrchr(stat, ')') + 2, "%c %d %d %d %d %d", &state, &ppid, &pgid, &sid,
               &tty, &tpgid) != 6)
        die("parse /proc/self/stat");
    say("pid=%d", (int)getpid());
    say("ppid=%d", ppid);
    say("pgid=%d", pgid);
    say("sid=%d", sid);
    say("tpgid=%d", tpgid);
    status_line("SigBlk", buf, sizeof buf);
    say("sigblk=%s", buf);
    status_line("SigIgn", buf, sizeof buf);
    say("sigign=%s", buf);
    status_line("SigCgt", buf, sizeof buf);
    say("sigcgt=%s", buf);

    DIR *d = opendir("/proc/self/fd");
    if (!d) die("opendir /proc/self/fd");
    int fds[1024], nfds = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nfds < 1024) {
        if (e->d_name[0] == '.') continue;
        int n = atoi(e->d_name);
        if (n != dirfd(d)) fds[nfds++] = n;
    }
    closedir(d);
    /* sort, then print as a comma list */
    for (int i = 0; i < nfds; i++)
        for (int j = i + 1; j < nfds; j++)
            if (fds[j] < fds[i]) {
                int t = fds[i];
                fds[i] = fds[j];
                fds[j] = t;
            }
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < nfds && off < sizeof buf - 16; i++)
        off += snprintf(buf + off, sizeof buf - off, "%s%d", i ? "," : "", fds[i]);
    say("fds=%s", buf);

    if (!getcwd(buf, sizeof buf)) die("getcwd");
    say("cwd=%s", buf);
    status_line("Name", buf, sizeof buf);
    say("comm=%s", buf);
    return 0;
}

static int mode_getenv(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *v = getenv(argv[i]);
        if (v)
            say("%s=%s", argv[i], v);
        else
            say("%s unset", argv[i]);
    }
    return 0;
}

static int mode_kill_self(const char *name) {
    int sig = parse_sig(name);
    sigset_t set;
    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    sleep_secs(1);
    die("still alive after raising %s", name);
    return 1;
}

static void ready(const char *tag) {
    say("ready %s pid=%d ppid=%d pgid=%d", tag, (int)getpid(), (int)getppid(),
        (int)getpgrp());
}

static int mode_ignore(int argc, char **argv) {
    const char *tag = "-";
    int i = 0;
    if (argc >= 2 && strcmp(argv[0], "-n") == 0) {
        tag = argv[1];
        i = 2;
    }
    for (; i < argc; i++)
        if (signal(parse_sig(argv[i]), SIG_IGN) == SIG_ERR) die("ignore %s", argv[i]);
    ready(tag);
    sleep_secs(lifetime);
    return 0;
}

static int mode_trap(int argc, char **argv) {
    const char *tag = "-", *file = NULL;
    sigset_t set, exit_set;
    int code = 0, kill_sig = 0, delay_ms = 0, opt;
    sigemptyset(&set);
    sigemptyset(&exit_set);
    optind = 0; /* argv[0] is the mode name */
    while ((opt = getopt(argc, argv, "+n:o:x:e:k:D:")) != -1) {
        switch (opt) {
        case 'n': tag = optarg; break;
        case 'o': file = optarg; break;
        case 'x': sigaddset(&exit_set, parse_sig(optarg)); break;
        case 'e': code = atoi(optarg); break;
        case 'k': kill_sig = parse_sig(optarg); break;
        case 'D': delay_ms = atoi(optarg); break;
        default: die("trap: bad option");
        }
    }
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "all") == 0) {
            for (int s = 1; s <= RT_MAX; s++)
                if (s != SIGKILL && s != SIGSTOP && s != 32 && s != 33) sigaddset(&set, s);
        } else {
            sigaddset(&set, parse_sig(argv[i]));
        }
    }
    for (int s = 1; s <= RT_MAX; s++)
        if (sigismember(&exit_set, s)) sigaddset(&set, s);
    int out = 1;
    if (file && (out = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
        die("open %s", file);
    if (sigprocmask(SIG_BLOCK, &set, NULL)) die("sigprocmask");
    ready(tag);
    double deadline = now() + lifetime;
    for (;;) {
        double left = deadline - now();
        if (left <= 0) return 99;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &ts);
        if (sig < 0) continue;
        char name[32];
        sig_name(sig, name, sizeof name);
        say_fd(out, "sig %d %s", sig, name);
        if (sigismember(&exit_set, sig)) {
            if (delay_ms) sleep_secs(delay_ms / 1000.0);
            if (kill_sig) {
                char n[16];
                snprintf(n, sizeof n, "%d", kill_sig);
                return mode_kill_self(n);
            }
            return code;
        }
    }
}

static void exec_or_die(char **argv) {
    execvp(argv[0], argv);
    die("exec %s: %s", argv[0], strerror(errno));
}

static int mode_fork(int argc, char **argv) {
    int setsid_flag = 0, daemon_flag = 0, i = 0;
    const char *sep = ":::";
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--sep") == 0 && i + 1 < argc)
            sep = argv[++i];
        else if (strcmp(argv[i], "--setsid") == 0)
            setsid_flag = 1;
        else if (strcmp(argv[i], "--daemon") == 0)
            daemon_flag = 1;
        else
            die("fork: bad option %s", argv[i]);
    }
    char **cmd = argv + i, **rest = NULL;
    for (; i < argc; i++)
        if (strcmp(argv[i], sep) == 0) {
            argv[i] = NULL;
            rest = argv + i + 1;
            break;
        }
    if (!cmd[0]) die("fork: no command");
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (setsid_flag && setsid() < 0) die("setsid");
        if (daemon_flag) {
            pid_t p2 = fork();
            if (p2 < 0) die("fork: %s", strerror(errno));
            if (p2 > 0) _exit(0);
        }
        exec_or_die(cmd);
    }
    if (daemon_flag) waitpid(pid, NULL, 0);
    if (rest && rest[0]) exec_or_die(rest);
    return 0;
}

static int mode_orphans(int argc, char **argv) {
    if (argc < 1) die("orphans: N missing");
    int n = atoi(argv[0]), batch = 500, sleep_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-b") == 0) batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-s") == 0) sleep_ms = atoi(argv[i + 1]);
        else die("orphans: bad option %s", argv[i]);
    }
    for (int made = 0; made < n;) {
        int this_batch = n - made < batch ? n - made : batch;
        pid_t mid = fork();
        if (mid < 0) {
            if (errno == EAGAIN) { sleep_secs(0.01); continue; }
            die("fork: %s", strerror(errno));
        }
        if (mid == 0) {
            for (int k = 0; k < this_batch;) {
                pid_t p = fork();
                if (p == 0) {
                    if (sleep_ms) sleep_secs(sleep_ms / 1000.0);
                    _exit(0);
                }
                if (p < 0) {
                    if (errno == EAGAIN) { sleep_secs(0.01); continue; }
                    _exit(1);
                }
                k++;
            }
            _exit(0);
        }
        int st;
        if (waitpid(mid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die("orphans: intermediate failed");
        made += this_batch;
    }
    say("orphans %d done", n);
    return 0;
}

static int mode_intermediate(int argc, char **argv) {
    const char *tag = "-";
    int code = 7;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-n") == 0) tag = argv[i + 1];
        else if (strcmp(argv[i], "-e") == 0) code = atoi(argv[i + 1]);
        else die("intermediate: bad option %s", argv[i]);
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    pid_t mid = fork();
    if (mid < 0) die("fork");
    if (mid == 0) {
        pid_t me = getpid();
        pid_t g = fork();
        if (g < 0) die("fork");
        if (g == 0) {
            say("grandchild %s pid=%d", tag, (int)getpid());
            double deadline = now() + lifetime;
            while (getppid() == me && now() < deadline) sleep_secs(0.005);
            say("adopted %s pid=%d ppid=%d", tag, (int)getpid(), (int)getppid());
            _exit(code);
        }
        kill(getpid(), SIGKILL);
        _exit(1);
    }
    int st;
    waitpid(mid, &st, 0);
    say("intermediate %s pid=%d sig=%d", tag, (int)mid, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    struct timespec ts = {(time_t)lifetime, 0};
    return sigtimedwait(&stop, NULL, &ts) > 0 ? 0 : 99;
}

static int mode_subreaper(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[0], "-o") != 0) die("subreaper -o FILE CMD...");
    int out = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) die("open %s", argv[1]);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) die("PR_SET_CHILD_SUBREAPER");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) exec_or_die(argv + 2);
    int code = 0, st;
    pid_t p;
    while ((p = waitpid(-1, &st, 0)) > 0 || errno == EINTR) {
        if (p <= 0) continue;
        if (WIFEXITED(st))
            say_fd(out, "reaped %d code=%d", (int)p, WEXITSTATUS(st));
        else
            say_fd(out, "reaped %d sig=%d", (int)p, WTERMSIG(st));
        if (p == child) code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return code;
}

/* ---- modes added for the hardening suite -------------------------------- */

static char **threadspawn_cmd;
static pid_t threadspawn_pid;

static void *threadspawn_body(void *arg) {
    (void)arg;
    pid_t p = fork();
    if (p < 0) die("fork: %s", strerror(errno));
    if (p == 0) exec_or_die(threadspawn_cmd);
    threadspawn_pid = p;
    say("spawned pid=%d tid=%d", (int)p, (int)gettid());
    return NULL;
}

static int mode_threadspawn(int argc, char **argv) {
    if (argc < 1) die("threadspawn: no command");
    threadspawn_cmd = argv;
    pthread_t t;
    if (pthread_create(&t, NULL, threadspawn_body, NULL)) die("pthread_create");
    void *ret;
    pthread_join(t, &ret);
    say("thread gone pid=%d", (int)threadspawn_pid);
    sleep_secs(lifetime);
    return 0;
}

static int mode_exec_with(int argc, char **argv) {
    int i = 0;
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (i + 1 >= argc) die("exec-with: %s needs a value", argv[i]);
        const char *o = argv[i], *v = argv[i + 1];
        if (strcmp(o, "-i") == 0) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = SIG_IGN;
            if (sigaction(parse_sig(v), &sa, NULL)) die("ignore %s", v);
        } else if (strcmp(o, "-b") == 0) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, parse_sig(v));
            sigprocmask(SIG_BLOCK, &set, NULL);
        } else if (strcmp(o, "-f") == 0 || strcmp(o, "-F") == 0) {
            int fd = atoi(v);
            const char *path = strchr(v, ':');
            if (!path) die("exec-with: %s wants FD:PATH", o);
            int got = open(path + 1, O_RDONLY);
            if (got < 0) die("open %s: %s", path + 1, strerror(errno));
            if (got != fd) {
                if (dup2(got, fd) < 0) die("dup2: %s", strerror(errno));
                close(got);
            }
            fcntl(fd, F_SETFD, o[1] == 'F' ? FD_CLOEXEC : 0);
        } else if (strcmp(o, "-c") == 0) {
            close(atoi(v));
        } else {
            die("exec-with: bad option %s", o);
        }
    }
    if (i >= argc || !argv[i + 1]) die("exec-with: no command");
    exec_or_die(argv + i + 1);
    return 98;
}

static unsigned long long fnv1a(const unsigned char *p, size_t n) {
    unsigned long long h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static int mode_hexargs(int argc, char **argv) {
    say("argc=%d", argc);
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        say("arg %d len=%zu fnv=%016llx", i, n, fnv1a((const unsigned char *)argv[i], n));
    }
    return 0;
}

static int mode_hexenv(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *v = getenv(argv[i]);
        if (!v) {
            say("env %s unset", argv[i]);
            continue;
        }
        size_t n = strlen(v);
        say("env %s len=%zu fnv=%016llx", argv[i], n, fnv1a((const unsigned char *)v, n));
    }
    return 0;
}

static int mode_hog(const char *mb) {
    long n = atol(mb);
    for (long i = 0; i < n; i++) {
        char *p = malloc(1 << 20);
        if (!p) die("hog: malloc failed after %ld MiB", i);
        memset(p, 1, 1 << 20);
        if (i % 16 == 0) say("hog %ld", i);
    }
    return 0;
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-T") == 0) {
            lifetime = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "-C") == 0) {
            struct rlimit rl;
            rl.rlim_cur = rl.rlim_max =
                strcmp(argv[i + 1], "unlimited") == 0 ? RLIM_INFINITY : strtoull(argv[i + 1], 0, 10);
            if (setrlimit(RLIMIT_CORE, &rl)) die("setrlimit: %s", strerror(errno));
        } else {
            die("unknown option %s", argv[i]);
        }
    }
    if (i >= argc) die("usage: kid [-C CORE] [-T SECS] MODE ARGS...");
    const char *mode = argv[i];
    int rc = argc - i - 1;
    char **ra = argv + i + 1;

    if (strcmp(mode, "report") == 0) return mode_report();
    if (strcmp(mode, "getenv") == 0) return mode_getenv(rc, ra);
    if (strcmp(mode, "exit") == 0 && rc == 1) return atoi(ra[0]);
    if (strcmp(mode, "kill-self") == 0 && rc == 1) return mode_kill_self(ra[0]);
    if (strcmp(mode, "sleep") == 0 && rc == 1) { sleep_secs(atof(ra[0])); return 0; }
    if (strcmp(mode, "pause") == 0) { sleep_secs(lifetime); return 0; }
    if (strcmp(mode, "ignore") == 0) return mode_ignore(rc, ra);
    if (strcmp(mode, "trap") == 0) return mode_trap(rc + 1, ra - 1);
    if (strcmp(mode, "fork") == 0) return mode_fork(rc, ra);
    if (strcmp(mode, "orphans") == 0) return mode_orphans(rc, ra);
    if (strcmp(mode, "intermediate") == 0) return mode_intermediate(rc, ra);
    if (strcmp(mode, "subreaper") == 0) return mode_subreaper(rc, ra);
    if (strcmp(mode, "threadspawn") == 0) return mode_threadspawn(rc, ra);
    if (strcmp(mode, "exec-with") == 0) return mode_exec_with(rc, ra);
    if (strcmp(mode, "hexargs") == 0) return mode_hexargs(rc, ra);
    if (strcmp(mode, "hexenv") == 0) return mode_hexenv(rc, ra);
    if (strcmp(mode, "hog") == 0 && rc == 1) return mode_hog(ra[0]);
    die("unknown mode %s", mode);
    return 98;
}
