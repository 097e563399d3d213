#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "shims.h"

int ci_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int ci_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
  return posix_spawn_file_actions_addchdir_np(actions, path);
}

short ci_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

static void fail(int report, int error) {
  (void)!write(report, &error, sizeof error);
  _exit(127);
}

pid_t ci_spawn_as_user(int program, char *const argv[], char *const envp[], uid_t uid, gid_t gid,
                       const gid_t *groups, int group_count, const char *directory, const int *fds,
                       int fd_count) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    int error = errno;
    close(report[0]);
    close(report[1]);
    errno = error;
    return -1;
  }
  if (pid == 0) {
    close(report[0]);
    // Groups first: after setuid the child may no longer change them.
    if (setgroups((size_t)group_count, groups) != 0) fail(report[1], errno);
    if (setresgid(gid, gid, gid) != 0) fail(report[1], errno);
    if (setresuid(uid, uid, uid) != 0) fail(report[1], errno);
    // Irrevocable: a process that could still become root must not run the phase.
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) fail(report[1], EPERM);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int number = 1; number < NSIG; number++) {
      if (number != SIGKILL && number != SIGSTOP) sigaction(number, &action, NULL);
    }
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    // Move the program and the handed-over descriptors out of the way first (any of them
    // may already sit on 3, 4, ...), then the handed-over ones onto 3, 4, ...
    int moved[8];
    if (fd_count > 8) fail(report[1], EINVAL);
    program = fcntl(program, F_DUPFD_CLOEXEC, 3 + fd_count);
    if (program < 0) fail(report[1], errno);
    for (int i = 0; i < fd_count; i++) {
      moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + fd_count);
      if (moved[i] < 0) fail(report[1], errno);
    }
    for (int i = 0; i < fd_count; i++) {
      if (dup2(moved[i], 3 + i) < 0) fail(report[1], errno);
    }
    if (directory != NULL && chdir(directory) != 0) fail(report[1], errno);
    fexecve(program, argv, envp);
    fail(report[1], errno);
  }
  close(report[1]);
  int error = 0;
  ssize_t got;
  do {
    got = read(report[0], &error, sizeof error);
  } while (got < 0 && errno == EINTR);
  close(report[0]);
  if (got == (ssize_t)sizeof error) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    errno = error;
    return -1;
  }
  return pid;
}
