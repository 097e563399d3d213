#if canImport(Glibc)
  import Glibc
#endif

/// numpy's `np.random.default_rng(seed)` reproduced bit for bit: SeedSequence (numpy
/// `bit_generator.pyx`) -> PCG64 (XSL-RR 128/64, `pcg64.h`) -> the 256-layer ziggurat of
/// `random_standard_normal` (`distributions.c`), with numpy's own tables
/// (scripts/gen-ziggurat-tables). Tests compare with the installed numpy.
public struct SeedSequence: Sendable {
  static let initA: UInt32 = 0x43b0_d7e5
  static let multA: UInt32 = 0x931e_8875
  static let initB: UInt32 = 0x8b51_f9dd
  static let multB: UInt32 = 0x58f3_8ded
  static let mixMultL: UInt32 = 0xca01_f9dd
  static let mixMultR: UInt32 = 0x4973_f715
  static let poolSize = 4

  public private(set) var pool: [UInt32]

  /// An integer seed, as `np.random.default_rng(seed)` takes it (non-negative).
  public init(_ seed: UInt64) {
    // The entropy as 32-bit words, least significant first (at least one word).
    var words: [UInt32] = [UInt32(truncatingIfNeeded: seed)]
    if seed >> 32 != 0 { words.append(UInt32(truncatingIfNeeded: seed >> 32)) }
    var hashConstant = SeedSequence.initA
    func hashmix(_ value: UInt32) -> UInt32 {
      var value = value ^ hashConstant
      hashConstant = hashConstant &* SeedSequence.multA
      value = value &* hashConstant
      return value ^ (value >> 16)
    }
    func mix(_ x: UInt32, _ y: UInt32) -> UInt32 {
      let result = (SeedSequence.mixMultL &* x) &- (SeedSequence.mixMultR &* y)
      return result ^ (result >> 16)
    }
    var pool = [UInt32](repeating: 0, count: SeedSequence.poolSize)
    for index in 0..<SeedSequence.poolSize {
      pool[index] = hashmix(index < words.count ? words[index] : 0)
    }
    for source in 0..<SeedSequence.poolSize {
      for destination in 0..<SeedSequence.poolSize where source != destination {
        pool[destination] = mix(pool[destination], hashmix(pool[source]))
      }
    }
    for source in SeedSequence.poolSize..<max(SeedSequence.poolSize, words.count) {
      for destination in 0..<SeedSequence.poolSize {
        pool[destination] = mix(pool[destination], hashmix(words[source]))
      }
    }
    self.pool = pool
  }

  /// `generate_state(count, np.uint64)`.
  public func generateState(_ count: Int) -> [UInt64] {
    var hashConstant = SeedSequence.initB
    var words: [UInt32] = []
    for index in 0..<(count * 2) {
      var value = pool[index % SeedSequence.poolSize] ^ hashConstant
      hashConstant = hashConstant &* SeedSequence.multB
      value = value &* hashConstant
      words.append(value ^ (value >> 16))
    }
    return (0..<count).map { UInt64(words[2 * $0]) | (UInt64(words[2 * $0 + 1]) << 32) }
  }
}

/// numpy's PCG64 bit generator.
public struct PCG64: Sendable {
  static let multiplier = (UInt128(0x2360_ED05_1FC6_5DA4) << 64) | UInt128(0x4385_DF64_9FCC_F645)
  var state: UInt128
  let increment: UInt128

  public init(seedSequence: SeedSequence) {
    let words = seedSequence.generateState(4)
    let initialState = (UInt128(words[0]) << 64) | UInt128(words[1])
    let sequence = (UInt128(words[2]) << 64) | UInt128(words[3])
    increment = (sequence << 1) | 1
    state = 0
    step()
    state = state &+ initialState
    step()
  }

  mutating func step() { state = state &* PCG64.multiplier &+ increment }

  public mutating func nextUInt64() -> UInt64 {
    step()
    let folded = UInt64(truncatingIfNeeded: state >> 64) ^ UInt64(truncatingIfNeeded: state)
    let rotation = UInt64(truncatingIfNeeded: state >> 122)
    return (folded >> rotation) | (folded << ((64 &- rotation) & 63))
  }

  /// A double in [0, 1) from the top 53 bits, as numpy's `next_double`.
  public mutating func nextDouble() -> Double {
    Double(nextUInt64() >> 11) * (1.0 / 9_007_199_254_740_992.0)
  }
}

/// `np.random.default_rng(seed)`: the draws the course's code makes.
public struct NumpyGenerator: Sendable {
  var bits: PCG64
  static let tailStart = 3.6541528853610088
  static let inverseTailStart = 0.27366123732975828

  public init(seed: UInt64) { bits = PCG64(seedSequence: SeedSequence(seed)) }

  public mutating func nextUInt64() -> UInt64 { bits.nextUInt64() }
  public mutating func nextDouble() -> Double { bits.nextDouble() }

  /// `standard_normal()`: the ziggurat, 99.3% of draws on the first test.
  public mutating func standardNormal() -> Double {
    while true {
      if let x = ziggurat(bits.nextUInt64()) { return x }
    }
  }

  /// One try of the ziggurat from the 64-bit draw `random`: the value, or nil when numpy
  /// rejects it and draws again.
  @inline(__always)
  mutating func ziggurat(_ random: UInt64) -> Double? {
    let layer = Int(random & 0xff)
    let random = random >> 8
    let negative = random & 1 == 1
    let magnitude = (random >> 1) & 0x000f_ffff_ffff_ffff
    var x = Double(magnitude) * ZigguratTables.wi[layer]
    if negative { x = -x }
    if magnitude < ZigguratTables.ki[layer] { return x }
    if layer == 0 {
      // The tail beyond the base strip (1 - U avoids log(0), as numpy does).
      while true {
        let xx = -NumpyGenerator.inverseTailStart * log1p(-bits.nextDouble())
        let yy = -log1p(-bits.nextDouble())
        if yy + yy > xx * xx {
          return (magnitude >> 8) & 1 == 1 ? -(NumpyGenerator.tailStart + xx) : NumpyGenerator.tailStart + xx
        }
      }
    }
    if (ZigguratTables.fi[layer - 1] - ZigguratTables.fi[layer]) * bits.nextDouble() + ZigguratTables.fi[layer]
      < exp(-0.5 * x * x)
    {
      return x
    }
    return nil
  }

  /// `standard_normal(count)`, row-major.
  public mutating func standardNormals(_ count: Int) -> [Double] {
    [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
      fillStandardNormals(buffer)
      initialized = count
    }
  }

  /// `standard_normal(buffer.count)` into `buffer`: the same draws as `standardNormal()`
  /// one by one, with the first test (99.3% of draws) inlined over the tables' storage,
  /// which is what makes a 1000x1000 Z cost a few milliseconds.
  public mutating func fillStandardNormals(_ buffer: UnsafeMutableBufferPointer<Double>) {
    ZigguratTables.ki.withUnsafeBufferPointer { ki in
      ZigguratTables.wi.withUnsafeBufferPointer { wi in
        for index in buffer.indices {
          let random = bits.nextUInt64()
          let layer = Int(random & 0xff)
          let magnitude = (random >> 9) & 0x000f_ffff_ffff_ffff
          if magnitude < ki[layer] {
            let x = Double(magnitude) * wi[layer]
            buffer[index] = (random >> 8) & 1 == 1 ? -x : x
          } else {
            buffer[index] = ziggurat(random) ?? standardNormal()
          }
        }
      }
    }
  }
}
