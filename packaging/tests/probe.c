/*
 * probe: the app that scripts/test-packaging runs under the shim in an empty
 * root and in containers. Built with `cc -static` so it needs nothing but
 * itself: the same world as a FROM-scratch image.
 *
 * Every line is one write(2) on stdout, so a test can wait for a line
 * instead of sleeping. Every waiting mode gives up after its lifetime
 * (default 60 s, -T SECS) and exits 99, so a broken test never leaves a
 * process behind for long.
 *
 *   probe [-T SECS] MODE ARGS...
 *
 *   ids                  "ids pid=P ppid=PP pid1=COMM", then exit 0.
 *                        pid1 is /proc/1/comm, or "-" without /proc.
 *   exit N               exit with code N
 *   orphans N            make N orphans: each intermediate forks one child
 *                        and exits at once; the child sleeps 100 ms, exits 0,
 *                        and is reaped by whoever adopted it (the shim).
 *                        Prints "orphans N made" and exits 0 once every
 *                        intermediate is reaped.
 *   zombies              count processes in state Z in /proc: "zombies N"
 *   serve [-e CODE] [-o N] [-i] [-n | -H]
 *                        -o: make N orphans first (as above); -i: also start
 *                        a child that ignores SIGTERM ("ignorer pid=P").
 *                        Prints "ready pid=P ppid=PP pid1=COMM", then waits
 *                        for SIGTERM/SIGINT: prints "got SIGTERM" and exits
 *                        CODE (default 0).
 *                        -n: speak sd_notify on $NOTIFY_SOCKET (an abstract
 *                        "@name" or a path): "READY=1\nSTATUS=serving" when
 *                        ready ("notified READY=1"), WATCHDOG=1 every third
 *                        of $WATCHDOG_USEC while waiting, and STOPPING=1 on
 *                        SIGTERM/SIGINT, 200 ms before it exits (as an app
 *                        that drains would). -H: as -n, but never a
 *                        WATCHDOG=1 ("hanging"), so a watchdog runs out.
 *   ignore-term          ignore SIGTERM, print "ready pid=P ppid=PP
 *                        pid1=COMM", wait out the lifetime.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int lifetime = 60;

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	ssize_t w;
	do
		w = write(1, buf, n);
	while (w < 0 && errno == EINTR);
}

static void pid1_comm(char *out, size_t len)
{
	snprintf(out, len, "-");
	int fd = open("/proc/1/comm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, out, len - 1);
	close(fd);
	if (n <= 0) {
		snprintf(out, len, "-");
		return;
	}
	out[n] = 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int make_orphans(int n)
{
	for (int i = 0; i < n; i++) {
		pid_t mid = fork();
		if (mid < 0)
			return -1;
		if (mid == 0) {
			pid_t kid = fork();
			if (kid == 0) {
				sleep_ms(100);
				_exit(0);
			}
			_exit(kid < 0 ? 1 : 0);
		}
		int st;
		while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
			;
	}
	return 0;
}

static int count_zombies(void)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	int z = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		char *rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && rp[2] == 'Z')
			z++;
	}
	closedir(d);
	return z;
}

/* Sends one sd_notify datagram to $NOTIFY_SOCKET; 0 when it went out. */
static int notify(const char *msg)
{
	const char *name = getenv("NOTIFY_SOCKET");
	if (!name || !*name)
		return -1;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	if (len >= sizeof addr.sun_path)
		return -1;
	memcpy(addr.sun_path, name, len);
	socklen_t alen = offsetof(struct sockaddr_un, sun_path) + len;
	if (name[0] == '@')
		addr.sun_path[0] = 0; /* abstract: exactly its bytes */
	else
		alen++; /* a path ends at its NUL */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t n = sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&addr, alen);
	close(fd);
	return n < 0 ? -1 : 0;
}

/* Wait for SIGTERM or SIGINT (blocked), at most `lifetime` seconds; with
 * `ping_ms` > 0, send WATCHDOG=1 that often meanwhile. */
static int wait_stop(long ping_ms)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	struct timespec now, end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += lifetime;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = (end.tv_sec - now.tv_sec) * 1000L + (end.tv_nsec - now.tv_nsec) / 1000000L;
		if (left <= 0) {
			errno = EAGAIN;
			return -1;
		}
		long wait = ping_ms > 0 && ping_ms < left ? ping_ms : left;
		struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
		int s = sigtimedwait(&set, NULL, &ts);
		if (s >= 0)
			return s;
		if (errno == EAGAIN && ping_ms > 0)
			notify("WATCHDOG=1");
		else if (errno != EINTR && errno != EAGAIN)
			return s;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: probe [-T SECS] ids|exit N|orphans N|zombies|"
			"serve [-e CODE] [-o N] [-i] [-n|-H]|ignore-term\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "-T") == 0) {
		lifetime = atoi(argv[i + 1]);
		i += 2;
	}
	if (i >= argc)
		usage();
	const char *mode = argv[i++];
	char comm[64];

	if (strcmp(mode, "ids") == 0) {
		pid1_comm(comm, sizeof comm);
		say("ids pid=%d ppid=%d pid1=%s", getpid(), getppid(), comm);
		return 0;
	}
	if (strcmp(mode, "exit") == 0) {
		if (i >= argc)
			usage();
		return atoi(argv[i]);
	}
	if (strcmp(mode, "orphans") == 0) {
		if (i >= argc)
			usage();
		int n = atoi(argv[i]);
		if (make_orphans(n) < 0)
			return 1;
		say("orphans %d made", n);
		return 0;
	}
	if (strcmp(mode, "zombies") == 0) {
		say("zombies %d", count_zombies());
		return 0;
	}
	if (strcmp(mode, "ignore-term") == 0) {
		signal(SIGTERM, SIG_IGN);
		pid1_comm(comm, sizeof comm);
		say("ready pid=%d ppid=%d pid1=%s", getpid(), getppid(), comm);
		sleep_ms(lifetime * 1000L);
		return 99;
	}
	if (strcmp(mode, "serve") == 0) {
		int code = 0, orphans = 0, ignorer = 0, notifying = 0, hang = 0;
		for (; i < argc; i++) {
			if (strcmp(argv[i], "-e") == 0 && i + 1 < argc)
				code = atoi(argv[++i]);
			else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
				orphans = atoi(argv[++i]);
			else if (strcmp(argv[i], "-i") == 0)
				ignorer = 1;
			else if (strcmp(argv[i], "-n") == 0)
				notifying = 1;
			else if (strcmp(argv[i], "-H") == 0)
				notifying = hang = 1;
			else
				usage();
		}
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigprocmask(SIG_BLOCK, &set, NULL);
		if (orphans) {
			if (make_orphans(orphans) < 0)
				return 1;
			say("orphans %d made", orphans);
		}
		if (ignorer) {
			pid_t p = fork();
			if (p == 0) {
				sigprocmask(SIG_UNBLOCK, &set, NULL);
				signal(SIGTERM, SIG_IGN);
				sleep_ms(lifetime * 1000L);
				_exit(99);
			}
			say("ignorer pid=%d", p);
		}
		pid1_comm(comm, sizeof comm);
		say("ready pid=%d ppid=%d pid1=%s", getpid(), getppid(), comm);
		long ping_ms = 0;
		if (notifying) {
			if (notify("READY=1\nSTATUS=serving") == 0)
				say("notified READY=1");
			else
				say("could not notify (NOTIFY_SOCKET=%s)", getenv("NOTIFY_SOCKET") ? getenv("NOTIFY_SOCKET") : "");
			const char *usec = getenv("WATCHDOG_USEC");
			if (usec && !hang && (ping_ms = atol(usec) / 3000) < 1)
				ping_ms = 1;
			if (hang)
				say("hanging");
		}
		int s = wait_stop(ping_ms);
		if (s < 0) {
			say("no stop signal within %d s", lifetime);
			return 99;
		}
		say("got %s", s == SIGTERM ? "SIGTERM" : "SIGINT");
		if (notifying) {
			notify("STOPPING=1");
			sleep_ms(200);
		}
		return code;
	}
	usage();
	return 2;
}
