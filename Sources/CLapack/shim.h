// LAPACK's C interface (Debian: liblapacke-dev) over OpenBLAS (libopenblas-dev).
#include <lapacke.h>
// BLAS's C interface (OpenBLAS): dsyrk for the Gram matrices XᵀX.
#include <cblas.h>
