import Foundation
import NumpyRandom
import SVD
import Testing

/// The course's computation in numpy, for comparison (the course's own formulas).
let numpyExperiment = """
  import sys, numpy as np
  nrow, ncol, seed = map(int, sys.argv[1:4])
  u = (-1.0) ** np.arange(nrow) / np.sqrt(nrow)
  v = (-1.0) ** (np.arange(ncol) + 1) / np.sqrt(ncol)
  Z = np.random.default_rng(1 + 10000 * seed).standard_normal((nrow, ncol))
  X = 3 * np.outer(u, v) + Z / 1000
  bits = X.ravel().view(np.uint64)
  print(int(np.bitwise_xor.reduce(bits)), int(bits.sum(dtype=np.uint64)))
  U, S, Vt = np.linalg.svd(X)
  print(" ".join(repr(float(x)) for x in S[:5]))
  print(" ".join(repr(float(x)) for x in Vt[0]))
  print(repr(float(Vt[0] @ v)))
  """

@Suite struct SVDTests {
  @Test(arguments: [(200, 150, 0), (120, 300, 7), (1000, 1000, 1)])
  func theExperimentMatchesNumpy(nrow: Int, ncol: Int, seed: Int) throws {
    let lines = try numpy(numpyExperiment, [String(nrow), String(ncol), String(seed)])
    try #require(lines.count == 4)
    // X itself: bit for bit (same generator, same order of floating-point operations).
    let x = SVDExperiment.matrix(nrow: nrow, ncol: ncol, seed: seed)
    var xor: UInt64 = 0
    var sum: UInt64 = 0
    for value in x.values {
      xor ^= value.bitPattern
      sum = sum &+ value.bitPattern
    }
    #expect("\(xor) \(sum)" == lines[0])
    // The SVD: to 1e-10 (numpy's wheel bundles its own OpenBLAS build; ours is Debian's).
    let result = try SingularValueDecomposition.decompose(x)
    let theirS = lines[1].split(separator: " ").compactMap { Double($0) }
    for (ours, theirs) in zip(result.singularValues, theirS) { #expect(abs(ours - theirs) < 1e-10) }
    let row = try SVDExperiment.run(nrow: nrow, ncol: ncol, seed: seed)
    let theirV = lines[2].split(separator: " ").compactMap { Double($0) }
    #expect(theirV.count == ncol)
    // Same sign as numpy when both LAPACKs agree on it; compared up to sign otherwise.
    let sign: Double = zip(row.vEstimate, theirV).map { $0 * $1 }.reduce(0, +) < 0 ? -1 : 1
    let worst = zip(row.vEstimate, theirV).map { abs($0 * sign - $1) }.max() ?? 1
    #expect(worst < 1e-10)
    let theirAlignment = try #require(Double(lines[3]))
    #expect(abs(row.vAlignment * sign - theirAlignment) < 1e-10)
    #expect(abs(row.vAlignment) > 0.99)  // 3 u vᵀ dominates the noise
  }
}
