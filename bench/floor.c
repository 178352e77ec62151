/*
 * floor: the kernel work of `hull run` of the benchmark bundle's config.json (/bin/true, hostname
 * hull-demo, read-only busybox root, runc's default mounts/devices/masks), with no runtime around it.
 *
 * It does, in hull's order, every kernel operation that shapes the container for that config
 * (cgroups, namespaces, mounts, device nodes, pivot_root, hostname, masked and read-only paths,
 * rlimit, user, capabilities, no_new_privs, execve) and nothing else: no JSON, no state
 * directory, no re-exec, no parent/child protocol, no fd-based path hardening, no fstatfs checks.
 * hull's `run` of /bin/true is measured against it (target: hull <= 1.5x floor).
 *
 *   gcc -O2 -static -o build/floor bench/floor.c
 *   floor ROOTFS [NAME] [-- CMD ARGS...]     (NAME defaults to floor-<pid>; CMD to /bin/true)
 *
 * The cgroup is <hierarchy>/floor/NAME: relative to our own cgroup in each v1 hierarchy (as runc
 * with a relative cgroupsPath) and at the root of the cgroup2 hierarchy. Works on the hybrid
 * layout (v1 controllers at /sys/fs/cgroup/<ctrl>, cgroup2 at /sys/fs/cgroup/unified) and on pure
 * cgroup v2 at /sys/fs/cgroup. Exits with the command's status; 1 (with a message) on failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define CG "/sys/fs/cgroup"
#define MAXH 16

struct hier {
	char mnt[64];   /* directory under /sys/fs/cgroup ("" on pure v2) */
	char opts[64];  /* v1 mount data: the controllers, "name=systemd", ... */
	char base[512]; /* where floor/NAME goes: the hierarchy root or our own cgroup in it */
	char leaf[640]; /* base/floor/NAME once made */
	int v2, made;   /* made: leaf exists (cleanup removes it) */
	int fd;         /* v1 `tasks` (written by the child) or the cgroup2 dir (CLONE_INTO_CGROUP) */
};
static struct hier H[MAXH];
static int nh, unified, in_child;
static const char *name;

static void cleanup(void);

static void die(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	fputs("floor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(e));
	if (!in_child)
		cleanup();
	_exit(1);
}

/* Reads path into buf (NUL-terminated); -1 with errno on failure. */
static int readf(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), len;
	if (fd < 0)
		return -1;
	len = read(fd, buf, n - 1);
	close(fd);
	if (len < 0)
		return -1;
	buf[len] = 0;
	return len;
}

static int writef(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r;
	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s));
	close(fd);
	return r < 0 ? -1 : 0;
}

/* ---- cgroups (parent) ------------------------------------------------------------------ */

/* The hierarchies: one cgroup2 on pure v2; else one per line of /proc/self/cgroup. */
static void find_hierarchies(void)
{
	struct statfs sf;
	char buf[4096], *line, *save;

	if (statfs(CG, &sf) < 0)
		die("statfs %s", CG);
	if (sf.f_type == CGROUP2_SUPER_MAGIC) {
		unified = 1;
		H[nh].v2 = 1;
		strcpy(H[nh++].base, CG);
		return;
	}
	if (readf("/proc/self/cgroup", buf, sizeof buf) < 0)
		die("read /proc/self/cgroup");
	for (line = strtok_r(buf, "\n", &save); line && nh < MAXH; line = strtok_r(NULL, "\n", &save)) {
		char *ctrl = strchr(line, ':'), *path;
		struct hier *h = &H[nh];
		if (!ctrl || !(path = strchr(++ctrl, ':')))
			continue;
		nh++;
		*path++ = 0;
		if (!*ctrl) { /* "0::/": cgroup2, systemd's hybrid mountpoint; floor/ at its root */
			h->v2 = 1;
			strcpy(h->mnt, "unified");
			snprintf(h->base, sizeof h->base, CG "/unified");
			continue;
		}
		snprintf(h->opts, sizeof h->opts, "%s", ctrl);
		snprintf(h->mnt, sizeof h->mnt, "%s", strncmp(ctrl, "name=", 5) ? ctrl : ctrl + 5);
		snprintf(h->base, sizeof h->base, CG "/%s%s", h->mnt, strcmp(path, "/") ? path : "");
	}
}

/* cgroup2: enable in dir's subtree_control every controller it has (as runc and hull do). */
static int enable_controllers(const char *dir)
{
	char p[700], avail[512], on[512], add[1024] = "", *c, *save;
	snprintf(p, sizeof p, "%s/cgroup.controllers", dir);
	if (readf(p, avail, sizeof avail) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/cgroup.subtree_control", dir);
	if (readf(p, on, sizeof on) < 0)
		return -1;
	for (c = strtok_r(avail, " \n", &save); c; c = strtok_r(NULL, " \n", &save))
		if (!strstr(on, c)) /* good enough for the kernel's controller names */
			snprintf(add + strlen(add), sizeof add - strlen(add), "%s+%s", *add ? " " : "", c);
	if (*add && writef(p, add) < 0) /* refused together: try one by one, ignoring refusals */
		for (c = strtok_r(add, " ", &save); c; c = strtok_r(NULL, " ", &save))
			writef(p, c);
	return 0;
}

/* v1 cpuset: a new cgroup starts with empty cpus/mems; copy the parent's (as hull and runc do). */
static int copy_cpuset(const char *dir, const char *parent)
{
	static const char *files[] = {"cpuset.cpus", "cpuset.mems"};
	char p[700], v[256];
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		if (readf(p, v, sizeof v) < 0)
			return -1;
		if (v[0] != '\n' && v[0])
			continue;
		snprintf(p, sizeof p, "%s/%s", parent, files[i]);
		if (readf(p, v, sizeof v) < 0)
			return -1;
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		if (writef(p, v) < 0)
			return -1;
	}
	return 0;
}

/* v2 device filter: allow what the v1 rules below allow, deny the rest (hull: eBPF on v2). */
static void attach_device_filter(int cgfd)
{
#define I(c, d, s, o, i) ((struct bpf_insn){(c), (d), (s), (o), (i)})
#define JEQ(r, v, off) I(BPF_JMP | BPF_JEQ | BPF_K, r, 0, off, v)
	struct bpf_insn prog[] = {
		I(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0), /*  0 r2 = access_type (access << 16 | type) */
		I(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 4, 0), /*  1 r3 = major */
		I(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 8, 0), /*  2 r4 = minor */
		I(BPF_ALU | BPF_MOV | BPF_X, 5, 2, 0, 0), /*  3 w5 = access_type */
		I(BPF_ALU | BPF_RSH | BPF_K, 5, 0, 0, 16), /* 4 w5 >>= 16: access */
		I(BPF_ALU | BPF_AND | BPF_K, 5, 0, 0, ~BPF_DEVCG_ACC_MKNOD), /* 5 */
		JEQ(5, 0, 18),                            /*  6 mknod only: "b *:* m", "c *:* m" */
		I(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff), /* 7 w2 = type */
		I(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 14, BPF_DEVCG_DEV_CHAR), /* 8 block: deny */
		JEQ(3, 136, 15),                          /*  9 c 136:* rwm */
		JEQ(3, 1, 4),                             /* 10 -> 15 */
		JEQ(3, 5, 9),                             /* 11 -> 21 */
		I(BPF_JMP | BPF_JNE | BPF_K, 3, 0, 10, 10), /* 12 */
		JEQ(4, 200, 11),                          /* 13 c 10:200 rwm */
		I(BPF_JMP | BPF_JA, 0, 0, 8, 0),          /* 14 deny */
		JEQ(4, 3, 9), JEQ(4, 5, 8), JEQ(4, 7, 7), JEQ(4, 8, 6), JEQ(4, 9, 5), /* 15-19 c 1:x */
		I(BPF_JMP | BPF_JA, 0, 0, 2, 0),          /* 20 deny */
		JEQ(4, 0, 3), JEQ(4, 2, 2),               /* 21-22 c 5:0, c 5:2 */
		I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0), I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0), /* 23 deny */
		I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1), I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0), /* 25 allow */
	};
	union bpf_attr a;
	int pfd;

	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (unsigned long)prog;
	a.insn_cnt = sizeof prog / sizeof prog[0];
	a.license = (unsigned long)"GPL";
	if ((pfd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a)) < 0)
		die("bpf prog load");
	memset(&a, 0, sizeof a);
	a.target_fd = cgfd;
	a.attach_bpf_fd = pfd;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	if (syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a) < 0)
		die("bpf prog attach");
	close(pfd); /* the attachment keeps it; it goes with the cgroup */
}

static void make_cgroup(struct hier *h)
{
	static const char *allow[] = {"b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
				      "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 10:200 rwm",
				      "c 136:* rwm"};
	int cpuset = strstr(h->opts, "cpuset") != NULL, devices = strstr(h->opts, "devices") != NULL;
	char parent[600], p[700];

	snprintf(parent, sizeof parent, "%s/floor", h->base);
	snprintf(h->leaf, sizeof h->leaf, "%s/%s", parent, name);
	for (int try = 0;; try++) { /* ENOENT: a concurrent floor removed floor/ under us; redo it */
		if ((!h->v2 || enable_controllers(h->base) == 0) &&
		    (mkdir(parent, 0755) == 0 || errno == EEXIST) &&
		    (!cpuset || copy_cpuset(parent, h->base) == 0) &&
		    (!h->v2 || enable_controllers(parent) == 0) && mkdir(h->leaf, 0755) == 0)
			break;
		if (errno != ENOENT || try == 3)
			die("create cgroup %s", h->leaf);
	}
	h->made = 1;
	if (cpuset && copy_cpuset(h->leaf, parent) < 0)
		die("cpuset %s", h->leaf);
	if (devices) { /* deny all, then the default allow list (config: deny all + default devices) */
		snprintf(p, sizeof p, "%s/devices.deny", h->leaf);
		if (writef(p, "a") < 0)
			die("write %s", p);
		snprintf(p, sizeof p, "%s/devices.allow", h->leaf);
		for (size_t i = 0; i < sizeof allow / sizeof *allow; i++)
			if (writef(p, allow[i]) < 0)
				die("write %s %s", p, allow[i]);
	}
	if (h->v2) {
		if ((h->fd = open(h->leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			die("open %s", h->leaf);
		if (unified) /* on hybrid hull, like runc, uses the v1 devices controller */
			attach_device_filter(h->fd);
	} else {
		snprintf(p, sizeof p, "%s/tasks", h->leaf);
		if ((h->fd = open(p, O_WRONLY | O_CLOEXEC)) < 0)
			die("open %s", p);
	}
}

/* rmdir every leaf we made, then floor/ if no other floor still uses it. */
static int cleanup_failed;
static void cleanup(void)
{
	char parent[600];
	for (int i = 0; i < nh; i++) {
		if (!H[i].leaf[0])
			continue; /* not reached */
		if (H[i].made && rmdir(H[i].leaf) < 0) {
			fprintf(stderr, "floor: rmdir %s: %s\n", H[i].leaf, strerror(errno));
			cleanup_failed = 1;
		}
		snprintf(parent, sizeof parent, "%s/floor", H[i].base);
		rmdir(parent); /* EBUSY: another floor's cgroup is in it */
	}
}

/* ---- container init (child) ------------------------------------------------------------ */

static char P[4096];
static const char *in(const char *root, const char *path)
{
	snprintf(P, sizeof P, "%s%s", root, path);
	return P;
}

static void mnt(const char *root, const char *dst, const char *src, const char *type,
		unsigned long flags, const char *data, int mk)
{
	const char *p = in(root, dst);
	if (mk && mkdir(p, 0755) < 0 && errno != EEXIST)
		die("mkdir %s", p);
	if (mount(src, p, type, flags, data) < 0)
		die("mount %s on %s", type ? type : "(remount)", p);
}

static void child(const char *r, char **argv)
{
	static const struct { const char *name; int major, minor; } devs[] = {
		{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
		{"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0}};
	static const char *links[][2] = {{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}, {"pts/ptmx", "/dev/ptmx"}};
	static const char *ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
	static const char *masked[] = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/sys/firmware", "/proc/scsi"};
	static char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			       "TERM=xterm", NULL};
	const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	const int keep = 1 << CAP_AUDIT_WRITE | 1 << CAP_KILL | 1 << CAP_NET_BIND_SERVICE;
	struct __user_cap_header_struct caph = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct capd[2] = {{keep, keep, 0}, {0, 0, 0}};
	struct rlimit nofile = {1024, 1024};
	char kname[300];
	int oldroot;

	in_child = 1;
	/* Join the v1 cgroups (cgroup2 was joined by clone3's CLONE_INTO_CGROUP). */
	for (int i = 0; i < nh; i++)
		if (!H[i].v2 && write(H[i].fd, "0", 1) < 0)
			die("join %s", H[i].leaf);
	/* A session keyring of its own, as runc and hull give the container. */
	snprintf(kname, sizeof kname, "_ses.%s", name);
	long key = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, kname);
	if (key < 0 || syscall(SYS_keyctl, KEYCTL_SETPERM, key, 0x3f3f0000) < 0)
		die("session keyring");
	umask(0); /* device nodes get exactly 0666 */

	/* Root: no propagation back to the host, the rootfs bound onto itself. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		die("make / rslave");
	if (mount(r, r, NULL, MS_BIND | MS_REC, NULL) < 0)
		die("bind %s", r);

	/* The config's mounts, in order. */
	mnt(r, "/proc", "proc", "proc", 0, NULL, 1);
	mnt(r, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", 1);
	mnt(r, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
	    "newinstance,ptmxmode=0666,mode=0620,gid=5", 1);
	mnt(r, "/dev/shm", "shm", "tmpfs", nse, "mode=1777,size=65536k", 1);
	mnt(r, "/dev/mqueue", "mqueue", "mqueue", nse, NULL, 1);
	mnt(r, "/sys", "sysfs", "sysfs", MS_RDONLY | nse, NULL, 1);
	/* cgroup namespace now that every cgroup is joined, then the "cgroup" mount: cgroup2 on
	 * pure v2; on hybrid (like runc) a tmpfs with one cgroup mount per hierarchy, then ro. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		die("unshare cgroup namespace");
	if (unified) {
		mnt(r, "/sys/fs/cgroup", "cgroup2", "cgroup2", MS_RDONLY | nse | MS_RELATIME, NULL, 0);
	} else {
		char dst[128];
		mnt(r, "/sys/fs/cgroup", "tmpfs", "tmpfs", nse, "mode=755", 0);
		for (int i = 0; i < nh; i++) {
			snprintf(dst, sizeof dst, "/sys/fs/cgroup/%s", H[i].mnt);
			mnt(r, dst, H[i].v2 ? "cgroup2" : "cgroup", H[i].v2 ? "cgroup2" : "cgroup",
			    MS_RDONLY | nse | MS_RELATIME, H[i].v2 ? NULL : H[i].opts, 1);
		}
		mnt(r, "/sys/fs/cgroup", NULL, NULL, MS_REMOUNT | MS_RDONLY | nse, "mode=755", 0);
	}

	/* Default devices and links in the new /dev. */
	for (size_t i = 0; i < sizeof devs / sizeof *devs; i++)
		if (mknod(in(r, devs[i].name), S_IFCHR | 0666, makedev(devs[i].major, devs[i].minor)) < 0)
			die("mknod %s", P);
	for (size_t i = 0; i < sizeof links / sizeof *links; i++)
		if (symlink(links[i][0], in(r, links[i][1])) < 0)
			die("symlink %s", P);

	/* pivot_root(".", ".") and detach the old root, as runc and hull do. */
	if ((oldroot = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || chdir(r) < 0)
		die("open / or chdir %s", r);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root");
	if (fchdir(oldroot) < 0 || mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		die("make old root rslave");
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		die("detach old root");
	close(oldroot);

	/* root.readonly, then hostname. */
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_RELATIME, NULL) < 0)
		die("remount / ro");
	umask(022);
	if (sethostname("hull-demo", 9) < 0)
		die("sethostname");

	/* readonlyPaths: bind onto itself, remount ro; missing ones skipped. */
	for (size_t i = 0; i < sizeof ro / sizeof *ro; i++) {
		if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			die("bind %s", ro[i]);
		}
		if (mount(NULL, ro[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_RELATIME, NULL) < 0)
			die("remount %s ro", ro[i]);
	}
	/* maskedPaths: a read-only tmpfs over directories, /dev/null over files. */
	for (size_t i = 0; i < sizeof masked / sizeof *masked; i++) {
		struct stat st;
		if (stat(masked[i], &st) < 0) {
			if (errno == ENOENT)
				continue;
			die("stat %s", masked[i]);
		}
		if (S_ISDIR(st.st_mode) ? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL)
					: mount("/dev/null", masked[i], NULL, MS_BIND, NULL))
			die("mask %s", masked[i]);
	}

	/* The process: rlimits, bounding set, user 0:0, capabilities, no_new_privs, exec. */
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
		die("setrlimit RLIMIT_NOFILE");
	for (int c = 0;; c++) /* EINVAL past the kernel's last capability */
		if (!(c < 32 && keep & 1 << c) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL && c > CAP_AUDIT_WRITE)
				break;
			die("drop capability %d from the bounding set", c);
		}
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		die("set user 0:0");
	if (syscall(SYS_capset, &caph, capd) < 0)
		die("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		die("clear ambient capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("no_new_privs");
	execve(argv[0], argv, envp);
	die("exec %s", argv[0]);
}

int main(int argc, char **argv)
{
	static char *true_argv[] = {"/bin/true", NULL};
	char **cmd = true_argv, defname[32];
	struct clone_args ca = {.flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID |
					 CLONE_NEWNET | CLONE_INTO_CGROUP,
				.exit_signal = SIGCHLD};
	int i, status;
	pid_t pid;

	if (argc < 2 || !strcmp(argv[1], "--")) {
		fprintf(stderr, "usage: floor ROOTFS [NAME] [-- CMD ARGS...]\n");
		return 2;
	}
	snprintf(defname, sizeof defname, "floor-%d", (int)getpid());
	name = defname;
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			if (i + 1 < argc)
				cmd = argv + i + 1;
			break;
		}
		name = argv[i];
	}

	/* Parent: the cgroups, then one clone3 into every namespace and the cgroup2 cgroup. */
	find_hierarchies();
	for (i = 0; i < nh; i++)
		make_cgroup(&H[i]);
	for (i = 0; i < nh; i++)
		if (H[i].v2)
			ca.cgroup = H[i].fd;
	pid = syscall(SYS_clone3, &ca, sizeof ca);
	if (pid < 0)
		die("clone3");
	if (pid == 0)
		child(argv[1], cmd);

	/* Wait, remove the cgroups, pass on the status. */
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	cleanup();
	if (cleanup_failed)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
