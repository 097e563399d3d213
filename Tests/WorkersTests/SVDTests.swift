import Foundation
import NumpyRandom
import SVD
import TestSizes
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

@Suite(.tags(.large)) struct SVDTests {
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
    // The default method against numpy too, with dgesdd's sign.
    let power = try SVDExperiment.run(nrow: nrow, ncol: ncol, seed: seed, method: .power)
    #expect(power.fallback == nil)
    #expect(zip(power.vEstimate, theirV).map { abs($0 * sign - $1) }.max() ?? 1 < 1e-10)
    #expect(abs(power.vAlignment * sign - theirAlignment) < 1e-10)
  }

  /// The power method is the full method's answer, sign included: every entry to 1e-12 for
  /// 200 seeds at three shapes (tall, square, wide). The course's 1000x1000 gets a few seeds
  /// here (dgesdd takes half a second each) and 200 in scripts/bench-svd --check.
  @Test(arguments: [(200, 150, 200), (100, 100, 200), (60, 250, 200), (1000, 1000, 3)])
  func powerIterationIsDgesddsVectorToE12(nrow: Int, ncol: Int, seeds: Int) throws {
    for seed in 0..<seeds {
      let x = SVDExperiment.matrix(nrow: nrow, ncol: ncol, seed: seed)
      let full = try SVDExperiment.analyze(x, seed: seed, method: .full)
      let power = try SVDExperiment.analyze(x, seed: seed, method: .power)
      #expect(power.fallback == nil, "seed \(seed)")
      let worst = zip(full.vEstimate, power.vEstimate).map { abs($0 - $1) }.max() ?? 1
      #expect(worst < 1e-12, "seed \(seed): \(worst)")
      #expect(abs(full.vAlignment - power.vAlignment) < 1e-12, "seed \(seed)")
    }
  }

  /// The row norms svd-map takes while drawing X are the ones of X.
  @Test func drawnRowNormsAreXs() {
    let (x, norms) = SVDExperiment.draw(nrow: 30, ncol: 20, seed: 4)
    #expect(x == SVDExperiment.matrix(nrow: 30, ncol: 20, seed: 4))
    for i in 0..<30 {
      let direct = (0..<20).map { x[i, $0] * x[i, $0] }.reduce(0, +)
      #expect(abs(norms[i] - direct) <= 1e-15 * direct)
    }
  }

  /// Without a dominant singular value (pure noise) the power method cannot certify its
  /// answer; it says why and returns dgesdd's.
  @Test func aWeakGapFallsBackToDgesddAndSaysSo() throws {
    var generator = NumpyGenerator(seed: 5)
    let noise = Matrix(rows: 80, columns: 50, values: generator.standardNormals(80 * 50))
    let top = try TopSingularVector.compute(noise)
    let fallback = try #require(top.fallback)
    #expect(fallback.hasPrefix("power iteration not certified after \(TopSingularVector.maximumIterations) iterations"))
    #expect(fallback.hasSuffix("; used dgesdd"))
    #expect(top.vector == Array(try SingularValueDecomposition.decompose(noise).vt.values[0..<50]))
    let empty = Matrix(rows: 3, columns: 2, values: [0, 0, 0, 0, 0, 0])
    #expect(try TopSingularVector.compute(empty).fallback == "‖X‖_F is 0.0; used dgesdd")
  }
}
