// Dense linear algebra for the vector transforms (vector_transform.h), in
// double precision: annvil links no LAPACK.
#pragma once

namespace annvil {

// Polar factor of a (rows x cols) row-major matrix: the closest matrix with
// orthonormal rows or columns, U V^T from a one-sided Jacobi SVD.
void polar_factor(int rows, int cols, const double* a, double* out);

// Faiss's matrix_qr: a holds n vectors of m floats (n <= m), replaced by
// the orthonormal Q of their QR decomposition (LAPACK geqrf + orgqr,
// Householder reflectors with beta = -sign(alpha) |x|), computed in double.
void matrix_qr(int m, int n, float* a);

// Eigen-decomposition of the symmetric n x n matrix a (row-major, both
// triangles): Householder tridiagonalisation then implicit QL.  On return
// w holds the eigenvalues in increasing order and row j of `a` the unit
// eigenvector of w[j].
void symmetric_eigen(int n, double* a, double* w);

}  // namespace annvil
