#ifndef CI_SLURM_SHIMS_H
#define CI_SLURM_SHIMS_H
#include <spawn.h>

// glibc keeps these behind _GNU_SOURCE, which Swift's Glibc module does not define.
int ci_pipe_cloexec(int fds[2]);
int ci_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
short ci_spawn_setsid_flag(void);
#endif
