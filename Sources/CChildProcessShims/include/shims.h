#ifndef CI_SLURM_SHIMS_H
#define CI_SLURM_SHIMS_H
#include <spawn.h>
#include <sys/types.h>

// glibc keeps these behind _GNU_SOURCE, which Swift's Glibc module does not define.
int ci_pipe_cloexec(int fds[2]);
int ci_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
short ci_spawn_setsid_flag(void);

// Starts the program open at `program` (fexecve: no path lookup, so directories the user
// cannot search do not matter) as another user: fork, then in the child only
// async-signal-safe calls (setgroups, setresgid, setresuid, a check that root cannot be
// regained, signal reset, dup2 of `fds[i]` onto descriptor 3 + i, chdir, fexecve).
// posix_spawn cannot change credentials. Returns the child's pid, or -1 with errno set
// (from the child's failing step when the child could not exec).
pid_t ci_spawn_as_user(int program, char *const argv[], char *const envp[], uid_t uid, gid_t gid,
                       const gid_t *groups, int group_count, const char *directory, const int *fds,
                       int fd_count);
#endif
