// SPDX-License-Identifier: MIT
/*
 * storm: perform N exec()s as fast as possible and record what happened, so
 * execsnoop's output can be checked against ground truth.
 *
 *   storm [-n N] [-j JOBS] [-a ARGS] [-l ARGLEN] [-f FAIL_EVERY] -o OUT.json
 *
 * Child i runs one of three kinds, cycling:
 *   "long"  /bin/true with ARGS arguments (default 24, more than execsnoop's
 *           default max_args) of ARGLEN bytes (default 160, longer than its
 *           128-byte argument limit)
 *   "short" /bin/true with the arguments "storm" and the decimal index i
 *   "fail"  every FAIL_EVERY-th child (default 10, 0 = never) execs a path
 *           that does not exist: /nonexistent/storm-<i>
 * argv[0] is the path. Long argument j (1-based) of child i is "<i>.<j>."
 * padded with 'x' to ARGLEN bytes, so a reader can rebuild every command line
 * from the index alone.
 *
 * Children are started with vfork()+execve() and up to JOBS run at once. Each
 * child's lifetime is CLOCK_MONOTONIC from just before vfork() to waitpid().
 * OUT.json holds {"n", "jobs", "ppid", "start_ns", "end_ns", "children": [...]}
 * with one {"i", "pid", "kind", "path", "argc", "exec_errno", "exit_code",
 * "signal", "lifetime_ns"} per child, in index order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum kind { KIND_LONG, KIND_SHORT, KIND_FAIL };
static const char *const kind_names[] = { "long", "short", "fail" };

struct child {
	pid_t pid;
	int kind;
	int argc;
	int exec_errno;
	int status;
	unsigned long long start_ns;
	unsigned long long lifetime_ns;
	char path[64];
};

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-n N] [-j JOBS] [-a ARGS] [-l ARGLEN] [-f FAIL_EVERY] -o OUT.json\n",
		prog);
	exit(2);
}

static int parse_int(const char *s, const char *what, int min)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > 10000000) {
		fprintf(stderr, "storm: bad %s: %s\n", what, s);
		exit(2);
	}
	return (int)v;
}

/* errno of a failed execve(), written by the vfork()ed child into shared memory */
static volatile int child_exec_errno;

static pid_t spawn(struct child *c, int index, int nargs, int arglen, int fail_every)
{
	char **argv, index_str[16];
	pid_t pid;
	int i;

	argv = calloc(nargs + 2, sizeof(*argv));
	if (!argv)
		return -1;
	if (fail_every > 0 && index % fail_every == fail_every - 1)
		c->kind = KIND_FAIL;
	else
		c->kind = index % 2 ? KIND_SHORT : KIND_LONG;

	if (c->kind == KIND_FAIL)
		snprintf(c->path, sizeof(c->path), "/nonexistent/storm-%d", index);
	else
		snprintf(c->path, sizeof(c->path), "/bin/true");
	argv[0] = c->path;
	c->argc = 1;
	if (c->kind == KIND_SHORT) {
		snprintf(index_str, sizeof(index_str), "%d", index);
		argv[c->argc++] = "storm";
		argv[c->argc++] = index_str;
	} else if (c->kind == KIND_LONG) {
		for (i = 1; i <= nargs; i++) {
			char *a = malloc(arglen + 1);
			int n;

			if (!a)
				return -1;
			n = snprintf(a, arglen + 1, "%d.%d.", index, i);
			if (n < arglen)
				memset(a + n, 'x', arglen - n);
			a[arglen] = '\0';
			argv[c->argc++] = a;
		}
	}

	child_exec_errno = 0;
	c->start_ns = now_ns();
	pid = vfork();
	if (pid == 0) {
		execve(c->path, argv, environ);
		child_exec_errno = errno;
		_exit(127);
	}
	c->exec_errno = child_exec_errno;
	c->pid = pid;
	if (c->kind == KIND_LONG)
		for (i = 1; i < c->argc; i++)
			free(argv[i]);
	free(argv);
	return pid;
}

static void write_json(FILE *f, struct child *kids, int n, int jobs,
		       unsigned long long start, unsigned long long end)
{
	int i;

	fprintf(f, "{\"n\": %d, \"jobs\": %d, \"ppid\": %d, \"start_ns\": %llu, \"end_ns\": %llu,\n",
		n, jobs, (int)getpid(), start, end);
	fprintf(f, " \"children\": [\n");
	for (i = 0; i < n; i++) {
		struct child *c = &kids[i];
		int code = WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
		int sig = WIFSIGNALED(c->status) ? WTERMSIG(c->status) : 0;

		fprintf(f,
			"  {\"i\": %d, \"pid\": %d, \"kind\": \"%s\", \"path\": \"%s\", \"argc\": %d, "
			"\"exec_errno\": %d, \"exit_code\": %d, \"signal\": %d, \"lifetime_ns\": %llu}%s\n",
			i, (int)c->pid, kind_names[c->kind], c->path, c->argc, c->exec_errno, code, sig,
			c->lifetime_ns, i + 1 < n ? "," : "");
	}
	fprintf(f, " ]}\n");
}

int main(int argc, char **argv)
{
	int n = 1000, jobs = 1, nargs = 24, arglen = 160, fail_every = 10;
	int opt, started = 0, running = 0, i;
	unsigned long long start, end;
	const char *out = NULL;
	struct child *kids;
	FILE *f;

	while ((opt = getopt(argc, argv, "n:j:a:l:f:o:h")) != -1) {
		switch (opt) {
		case 'n': n = parse_int(optarg, "N", 1); break;
		case 'j': jobs = parse_int(optarg, "JOBS", 1); break;
		case 'a': nargs = parse_int(optarg, "ARGS", 0); break;
		case 'l': arglen = parse_int(optarg, "ARGLEN", 8); break;
		case 'f': fail_every = parse_int(optarg, "FAIL_EVERY", 0); break;
		case 'o': out = optarg; break;
		default: usage(argv[0]);
		}
	}
	if (!out || optind != argc)
		usage(argv[0]);

	kids = calloc(n, sizeof(*kids));
	if (!kids) {
		perror("storm: calloc");
		return 1;
	}

	start = now_ns();
	while (started < n || running > 0) {
		if (started < n && running < jobs) {
			if (spawn(&kids[started], started, nargs, arglen, fail_every) < 0) {
				perror("storm: spawn");
				return 1;
			}
			started++;
			running++;
			continue;
		}
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		unsigned long long t = now_ns();

		if (pid < 0) {
			perror("storm: waitpid");
			return 1;
		}
		for (i = started - 1; i >= 0; i--) {
			if (kids[i].pid == pid && kids[i].lifetime_ns == 0) {
				kids[i].status = status;
				kids[i].lifetime_ns = t - kids[i].start_ns;
				running--;
				break;
			}
		}
	}
	end = now_ns();

	f = fopen(out, "w");
	if (!f) {
		perror("storm: open output");
		return 1;
	}
	write_json(f, kids, n, jobs, start, end);
	if (fclose(f)) {
		perror("storm: write output");
		return 1;
	}
	fprintf(stderr, "storm: %d execs in %.3f s\n", n, (end - start) / 1e9);
	return 0;
}
