// LAPACK's C interface (Debian: liblapacke-dev) over OpenBLAS (libopenblas-dev).
#include <lapacke.h>
