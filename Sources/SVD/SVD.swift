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
  public static func matrix(nrow: Int, ncol: Int, seed: Int) -> Matrix {
    var generator = NumpyGenerator(seed: seedOfRNG(seed))
    let u = u(nrow)
    let v = v(ncol)
    var values = [Double](repeating: 0, count: nrow * ncol)
    for i in 0..<nrow {
      for j in 0..<ncol {
        let z = generator.standardNormal()
        values[i * ncol + j] = 3 * (u[i] * v[j]) + z / 1000
      }
    }
    return Matrix(rows: nrow, columns: ncol, values: values)
  }

  public struct Row: Sendable, Equatable {
    public var nrow: Int
    public var ncol: Int
    public var seed: Int
    /// Signed inner product of the estimate with the true v.
    public var vAlignment: Double
    public var vEstimate: [Double]
  }

  public static func run(nrow: Int, ncol: Int, seed: Int) throws -> Row {
    let result = try SingularValueDecomposition.decompose(matrix(nrow: nrow, ncol: ncol, seed: seed))
    let estimate = Array(result.vt.values[0..<ncol])
    let truth = v(ncol)
    var alignment = 0.0
    for j in 0..<ncol { alignment += estimate[j] * truth[j] }
    return Row(nrow: nrow, ncol: ncol, seed: seed, vAlignment: alignment, vEstimate: estimate)
  }
}
