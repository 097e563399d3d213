import CLapack
public import NumpyRandom

/// A dense matrix, row-major, as numpy holds `X`.
public struct Matrix: Sendable, Equatable {
  public var rows: Int
  public var columns: Int
  public var values: [Double]

  public init(rows: Int, columns: Int, values: [Double]) {
    precondition(values.count == rows * columns)
    self.rows = rows
    self.columns = columns
    self.values = values
  }

  public subscript(row: Int, column: Int) -> Double { values[row * columns + column] }
}

public struct SVDError: Error, Equatable, CustomStringConvertible, Sendable {
  public var message: String
  public var description: String { message }
}

/// The full SVD through LAPACK's divide-and-conquer `dgesdd` (the routine numpy's
/// `np.linalg.svd` calls), jobz = 'A' like numpy's default `full_matrices=True`.
public enum SingularValueDecomposition {
  public struct Result: Sendable {
    public var singularValues: [Double]
    /// Vᵀ, row-major: row k is the k-th right singular vector.
    public var vt: Matrix
  }

  /// Singular vectors are unique only up to sign; they are returned exactly as LAPACK gives
  /// them (so with the same LAPACK build, the same signs as numpy).
  public static func decompose(_ matrix: Matrix) throws -> Result {
    let m = matrix.rows
    let n = matrix.columns
    guard m > 0, n > 0 else { throw SVDError(message: "cannot decompose an empty \(m)x\(n) matrix") }
    var a = matrix.values
    var s = [Double](repeating: 0, count: min(m, n))
    var u = [Double](repeating: 0, count: m * m)
    var vt = [Double](repeating: 0, count: n * n)
    let info = LAPACKE_dgesdd(
      LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "A")), Int32(m), Int32(n), &a, Int32(n), &s, &u,
      Int32(m), &vt, Int32(n))
    guard info == 0 else {
      throw SVDError(message: info < 0 ? "dgesdd: argument \(-info) is invalid" : "dgesdd did not converge (info \(info))")
    }
    return Result(singularValues: s, vt: Matrix(rows: n, columns: n, values: vt))
  }
}

/// OpenBLAS starts one thread per core unless told otherwise; in a Slurm job that
/// oversubscribes the cores the job did not ask for. The workers call this with the job's
/// SLURM_CPUS_PER_TASK unless OPENBLAS_NUM_THREADS was set by the user.
public enum BLASThreads {
  public static func limit(to count: Int) {
    guard count >= 1 else { return }
    openblas_set_num_threads(Int32(count))
  }
}

/// Gram matrices for the exact tall-and-skinny answer: the right singular vectors of the
/// stacked X₁…X_k are the eigenvectors of Σ XᵢᵀXᵢ, so a map can keep an n×n running sum
/// instead of its rows.
public enum GramMatrix {
  /// sum += XᵀX (upper triangle; the lower one is left as is), through BLAS dsyrk.
  public static func accumulate(_ matrix: Matrix, into sum: inout [Double]) {
    let n = matrix.columns
    precondition(sum.count == n * n)
    matrix.values.withUnsafeBufferPointer { x in
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(matrix.rows), 1.0, x.baseAddress, Int32(n), 1.0, &sum, Int32(n))
    }
  }

  /// The eigenvector of the largest eigenvalue of a symmetric matrix given by its upper
  /// triangle (LAPACK dsyevd); the sign is LAPACK's.
  public static func topEigenvector(_ upper: [Double], n: Int) throws -> [Double] {
    guard n > 0, upper.count == n * n else { throw SVDError(message: "a Gram matrix of \(upper.count) values is not \(n)x\(n)") }
    var a = upper
    var eigenvalues = [Double](repeating: 0, count: n)
    let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &eigenvalues)
    guard info == 0 else { throw SVDError(message: "dsyevd failed (info \(info))") }
    // Eigenvalues ascend; the eigenvectors are the columns of `a`.
    return (0..<n).map { a[$0 * n + n - 1] }
  }
}

/// The course's experiment: per seed, X = 3 u vᵀ + Z / 1000 with u[i] = (-1)^i / sqrt(nrow),
/// v[j] = (-1)^(j+1) / sqrt(ncol), Z standard normal from numpy's default_rng(1 + 10000 s),
/// drawn row-major; the top right singular vector of X estimates v.
public enum SVDExperiment {
  public static func seedOfRNG(_ seed: Int) -> UInt64 { UInt64(1 + 10_000 * seed) }

  public static func u(_ nrow: Int) -> [Double] {
    (0..<nrow).map { (($0 % 2 == 0) ? 1.0 : -1.0) / Double(nrow).squareRoot() }
  }

  public static func v(_ ncol: Int) -> [Double] {
    (0..<ncol).map { (($0 % 2 == 1) ? 1.0 : -1.0) / Double(ncol).squareRoot() }
  }

  /// Element by element in numpy's order of operations: (3 * (u_i * v_j)) + (z / 1000).
  public static func matrix(nrow: Int, ncol: Int, seed: Int) -> Matrix { draw(nrow: nrow, ncol: ncol, seed: seed).matrix }

  /// X and the squared norms of its rows, taken while each row is still in cache (power
  /// iteration needs them; a second pass over 8 MB would cost a millisecond).
  public static func draw(nrow: Int, ncol: Int, seed: Int) -> (matrix: Matrix, rowNormsSquared: [Double]) {
    var generator = NumpyGenerator(seed: seedOfRNG(seed))
    let u = u(nrow)
    let v = v(ncol)
    var norms = [Double](repeating: 0, count: nrow)
    let values = [Double](unsafeUninitializedCapacity: nrow * ncol) { buffer, initialized in
      for i in 0..<nrow {
        let row = UnsafeMutableBufferPointer(rebasing: buffer[(i * ncol)..<((i + 1) * ncol)])
        generator.fillStandardNormals(row)
        let ui = u[i]
        var norm = 0.0
        for j in 0..<ncol {
          let x = 3 * (ui * v[j]) + row[j] / 1000
          row[j] = x
          norm += x * x
        }
        norms[i] = norm
      }
      initialized = nrow * ncol
    }
    return (Matrix(rows: nrow, columns: ncol, values: values), norms)
  }

  public struct Row: Sendable, Equatable {
    public var nrow: Int
    public var ncol: Int
    public var seed: Int
    /// Signed inner product of the estimate with the true v.
    public var vAlignment: Double
    public var vEstimate: [Double]
    /// Why the power method fell back to dgesdd, when it did.
    public var fallback: String?
  }

  public static func run(nrow: Int, ncol: Int, seed: Int, method: SVDMethod = .power) throws -> Row {
    let (x, norms) = draw(nrow: nrow, ncol: ncol, seed: seed)
    return try analyze(x, seed: seed, method: method, rowNormsSquared: norms)
  }

  public static func analyze(_ x: Matrix, seed: Int, method: SVDMethod = .power, rowNormsSquared: [Double]? = nil) throws -> Row {
    let (nrow, ncol) = (x.rows, x.columns)
    let estimate: [Double]
    var fallback: String? = nil
    switch method {
    case .full:
      estimate = Array(try SingularValueDecomposition.decompose(x).vt.values[0..<ncol])
    case .power:
      let top = try x.values.withUnsafeBufferPointer {
        try TopSingularVector.compute($0, rows: nrow, columns: ncol, rowNormsSquared: rowNormsSquared)
      }
      estimate = top.vector
      fallback = top.fallback
    }
    let truth = v(ncol)
    var alignment = 0.0
    for j in 0..<ncol { alignment += estimate[j] * truth[j] }
    return Row(nrow: nrow, ncol: ncol, seed: seed, vAlignment: alignment, vEstimate: estimate, fallback: fallback)
  }
}
