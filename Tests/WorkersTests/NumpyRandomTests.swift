import Foundation
import NumpyRandom
import TestSizes
import Testing

/// Runs a Python snippet with the installed numpy; returns its stdout lines.
func numpy(_ program: String, _ arguments: [String]) throws -> [String] {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = ["python3", "-c", program] + arguments
  let pipe = Pipe()
  let errors = Pipe()
  process.standardOutput = pipe
  process.standardError = errors
  try process.run()
  let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  process.waitUntilExit()
  #expect(process.terminationStatus == 0, "python3 with numpy failed: \(stderr)")
  return output.split(separator: "\n").map(String.init)
}

/// The course's seeds: 1 + 10000 * s.
let courseSeeds: [UInt64] = [0, 1, 7, 999].map { 1 + 10_000 * $0 }

@Suite(.tags(.large)) struct NumpyRandomTests {
  @Test func rawDrawsMatchNumpyIncludingMultiWordSeeds() throws {
    let seeds: [UInt64] = courseSeeds + [0, (1 << 40) + 3, UInt64.max]
    let lines = try numpy(
      """
      import sys, numpy as np
      for seed in sys.argv[1:]:
          print(" ".join(str(int(x)) for x in np.random.default_rng(int(seed)).bit_generator.random_raw(5)))
      """, seeds.map(String.init))
    #expect(lines.count == seeds.count)
    for (seed, line) in zip(seeds, lines) {
      var generator = NumpyGenerator(seed: seed)
      let ours = (0..<5).map { _ in String(generator.nextUInt64()) }.joined(separator: " ")
      #expect(ours == line, "seed \(seed)")
    }
  }

  @Test func doublesMatchNumpy() throws {
    let lines = try numpy(
      "import numpy as np\nprint(' '.join(repr(float(x)) for x in np.random.default_rng(10001).random(4)))", [])
    #expect(lines.count == 1)
    var generator = NumpyGenerator(seed: 10001)
    #expect((0..<4).map { _ in "\(generator.nextDouble())" }.joined(separator: " ") == lines.first)
  }

  /// The whole 1000x1000 Z of a seed, row-major: xor and wrapping sum of the bit patterns,
  /// and the first draws, against numpy's `default_rng(seed).standard_normal((1000, 1000))`.
  @Test func aMillionNormalsPerSeedMatchNumpyBitForBit() throws {
    let lines = try numpy(
      """
      import sys, numpy as np
      for seed in sys.argv[1:]:
          z = np.random.default_rng(int(seed)).standard_normal((1000, 1000))
          bits = z.ravel().view(np.uint64)
          print(int(np.bitwise_xor.reduce(bits)), int(bits.sum(dtype=np.uint64)), " ".join(repr(float(x)) for x in z.ravel()[:3]))
      """, courseSeeds.map(String.init))
    #expect(lines.count == courseSeeds.count)
    for (seed, line) in zip(courseSeeds, lines) {
      var generator = NumpyGenerator(seed: seed)
      let values = generator.standardNormals(1_000_000)
      var xor: UInt64 = 0
      var sum: UInt64 = 0
      for value in values {
        xor ^= value.bitPattern
        sum = sum &+ value.bitPattern
      }
      let ours = "\(xor) \(sum) " + values.prefix(3).map { "\($0)" }.joined(separator: " ")
      #expect(ours == line, "seed \(seed)")
    }
  }
}
