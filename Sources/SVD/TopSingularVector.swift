import CLapack

/// How svd-map and svd-reduce get the top right singular vector.
public enum SVDMethod: String, CaseIterable, Sendable {
  /// Power iteration on XᵀX through BLAS dgemv, certified by its residual; dgesdd when it
  /// cannot certify (the default: each seed reports one vector, not all of them).
  case power
  /// The course's computation: all singular triplets through dgesdd, the first one kept.
  case full
}

/// The top right singular vector of a dense matrix, by power iteration: y = X v, σ = ‖y‖,
/// u = y / σ, w = Xᵀ u. The iterate is accepted when two things are certain:
/// - it is the *top* singular vector: σ² > ‖X‖²_F − σ², so no other singular value can be
///   as large (their squares sum to at most ‖X‖²_F − σ²);
/// - it is accurate: the residual ‖Xᵀu − σv‖ is below `tolerance` times the gap bound
///   σ − √(‖X‖²_F − σ²), which bounds the angle to the true vector (Wedin's theorem).
/// Otherwise (a weak gap: many iterations, or a spread-out spectrum) it is dgesdd's answer,
/// with the reason, for the caller to log.
public enum TopSingularVector {
  public struct Result: Sendable {
    public var vector: [Double]
    public var singularValue: Double
    /// Matrix-vector products with X or Xᵀ, two per iteration.
    public var products: Int
    /// Why dgesdd was used instead, when it was.
    public var fallback: String?
  }

  /// Angle bound asked of an accepted iterate; the vector returned is one more half-step
  /// further along, so its distance to dgesdd's is far below 1e-12 per entry.
  public static let tolerance = 1e-13
  /// Past this many iterations the gap is too weak for power iteration to beat dgesdd.
  public static let maximumIterations = 60

  /// `values` is row-major `rows` x `columns`; `rowNormsSquared` may be given when the
  /// caller already has them (svd-map computes them while it draws X).
  public static func compute(
    _ values: UnsafeBufferPointer<Double>, rows: Int, columns: Int, rowNormsSquared: [Double]? = nil
  ) throws -> Result {
    precondition(values.count >= rows * columns)
    guard rows > 0, columns > 0 else { throw SVDError(message: "cannot decompose an empty \(rows)x\(columns) matrix") }
    let x = values.baseAddress!
    let norms = rowNormsSquared ?? (0..<rows).map { i in cblas_ddot(Int32(columns), x + i * columns, 1, x + i * columns, 1) }
    let frobenius = norms.reduce(0, +)
    guard frobenius > 0, frobenius.isFinite else {
      return try full(values, rows: rows, columns: columns, products: 0, reason: "‖X‖_F is \(frobenius)")
    }
    // Start from the row with the largest norm: never orthogonal to the top right vector
    // when that vector carries most of X (the only case this method accepts).
    let longest = norms.indices.max { norms[$0] < norms[$1] }!
    var v = Array(UnsafeBufferPointer(start: x + longest * columns, count: columns))
    scale(&v, by: 1 / norms[longest].squareRoot())
    var y = [Double](repeating: 0, count: rows)
    var w = [Double](repeating: 0, count: columns)
    var residual = Double.infinity
    for iteration in 1...maximumIterations {
      cblas_dgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(columns), 1, x, Int32(columns), v, 1, 0, &y, 1)
      let sigma = cblas_dnrm2(Int32(rows), y, 1)
      guard sigma > 0 else { break }
      cblas_dgemv(CblasRowMajor, CblasTrans, Int32(rows), Int32(columns), 1 / sigma, x, Int32(columns), y, 1, 0, &w, 1)
      // w = Xᵀu; the residual of (u, σ, v).
      var squared = 0.0
      for j in 0..<columns {
        let difference = w[j] - sigma * v[j]
        squared += difference * difference
      }
      residual = squared.squareRoot()
      let rest = max(0, frobenius - sigma * sigma)
      let isTop = sigma * sigma > rest
      v = w
      scale(&v, by: 1 / cblas_dnrm2(Int32(columns), v, 1))
      if isTop && residual <= tolerance * (sigma - rest.squareRoot()) {
        applySignConvention(&v, firstEntry: x[0])
        return Result(vector: v, singularValue: sigma, products: 2 * iteration, fallback: nil)
      }
    }
    return try full(
      values, rows: rows, columns: columns, products: 2 * maximumIterations,
      reason: "power iteration not certified after \(maximumIterations) iterations (residual \(residual))")
  }

  public static func compute(_ matrix: Matrix) throws -> Result {
    try matrix.values.withUnsafeBufferPointer { try compute($0, rows: matrix.rows, columns: matrix.columns) }
  }

  /// dgesdd's sign when one singular value dominates: its first Householder reflector maps
  /// X's first column to β e₁ with β = −sign(X₀₀)‖X₀‖, and its bidiagonal solver then
  /// returns the top left vector with a positive first entry, so σ v₀ = β u_b₀ has the sign
  /// of −X₀₀ (tested against dgesdd over 200 seeds at several sizes).
  static func applySignConvention(_ v: inout [Double], firstEntry: Double) {
    let flip = firstEntry == 0 ? v[0] < 0 : (v[0] > 0) == (firstEntry > 0)
    if flip { scale(&v, by: -1) }
  }

  static func scale(_ vector: inout [Double], by factor: Double) {
    for index in vector.indices { vector[index] *= factor }
  }

  static func full(_ values: UnsafeBufferPointer<Double>, rows: Int, columns: Int, products: Int, reason: String) throws -> Result {
    let matrix = Matrix(rows: rows, columns: columns, values: Array(values.prefix(rows * columns)))
    let result = try SingularValueDecomposition.decompose(matrix)
    return Result(
      vector: Array(result.vt.values[0..<columns]), singularValue: result.singularValues[0], products: products,
      fallback: "\(reason); used dgesdd")
  }
}
