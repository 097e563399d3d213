public import Foundation
public import SVD

/// Seed lists: `0-999`, `0-9,20-29`, `7`.
public enum SeedList {
  public static func parse(_ text: String) throws -> [Int] {
    var seeds: [Int] = []
    for part in text.split(separator: ",", omittingEmptySubsequences: false) {
      let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
      guard (1...2).contains(bounds.count), let low = Int(bounds[0]), low >= 0,
        let high = bounds.count == 2 ? Int(bounds[1]) : low, high >= low, high - low < 10_000_000
      else { throw WorkerError("--seeds \(text): '\(part)' is not a seed or a range like 0-999") }
      seeds += Array(low...high)
    }
    return Array(Set(seeds)).sorted()
  }

  /// Contiguous blocks, one per array task: task k of n gets the k-th block.
  public static func share(_ seeds: [Int], task: Int, of tasks: Int) -> [Int] {
    guard tasks > 1 else { return seeds }
    let size = (seeds.count + tasks - 1) / tasks
    let start = min(seeds.count, task * size)
    return Array(seeds[start..<min(seeds.count, start + size)])
  }

  /// `0-3, 7, 9-10` for messages.
  public static func describe(_ seeds: [Int]) -> String {
    var parts: [String] = []
    var index = 0
    let sorted = seeds.sorted()
    while index < sorted.count {
      var end = index
      while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
      parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
      index = end + 1
    }
    return parts.joined(separator: ",")
  }
}

/// svd-map: the course's per-seed experiment over a parameter grid, shared across Slurm
/// array tasks, stored in SQLite (resumable), with progress lines.
public struct SVDMap {
  public var nrow: Int
  public var ncol: Int
  public var seeds: [Int]
  public var outputDirectory: String
  public var task: Int
  public var tasks: Int
  public var log: (String) -> Void

  public init(nrow: Int, ncol: Int, seeds: [Int], outputDirectory: String, task: Int, tasks: Int, log: @escaping (String) -> Void) {
    self.nrow = nrow
    self.ncol = ncol
    self.seeds = seeds
    self.outputDirectory = outputDirectory
    self.task = task
    self.tasks = tasks
    self.log = log
  }

  public static func table(nrow: Int, ncol: Int) -> String { "svd_\(nrow)x\(ncol)" }
  public static func vectorColumns(_ ncol: Int) -> [String] {
    let width = max(3, String(ncol - 1).count)
    return (0..<ncol).map { "ve" + String(repeating: "0", count: width - String($0).count) + String($0) }
  }

  public var shardPath: String { "\(outputDirectory)/shard-\(task).sqlite" }

  @discardableResult
  public func run() throws -> (computed: Int, skipped: Int) {
    guard nrow > 0, ncol > 0, nrow <= 20_000, ncol <= 1998 else {
      throw WorkerError("--nrow \(nrow) --ncol \(ncol): sizes must be 1 to 20000 rows and 1 to 1998 columns (SQLite's column limit)")
    }
    try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
    let store = try ResultStore(
      path: shardPath, table: SVDMap.table(nrow: nrow, ncol: ncol), integerColumns: ["nrow", "ncol", "seed"],
      realColumns: ["v_alignment"] + SVDMap.vectorColumns(ncol))
    let mine = SeedList.share(seeds, task: task, of: tasks)
    let done = try store.storedSeeds()
    let todo = mine.filter { !done.contains($0) }
    log("svd-map: task \(task) of \(tasks): \(mine.count) seeds (\(SeedList.describe(mine))), \(mine.count - todo.count) already stored in \(shardPath)")
    let started = Date()
    for (index, seed) in todo.enumerated() {
      let row = try SVDExperiment.run(nrow: nrow, ncol: ncol, seed: seed)
      try store.insert(integers: [nrow, ncol, seed], reals: [row.vAlignment] + row.vEstimate)
      let elapsed = Date().timeIntervalSince(started)
      let perSeed = elapsed / Double(index + 1)
      let remaining = perSeed * Double(todo.count - index - 1)
      log(String(format: "svd-map: %d/%d seeds, %.2f s per seed, about %.0f s left (seed %d: v_alignment %.6f)", index + 1, todo.count, perSeed, remaining, seed, row.vAlignment))
    }
    return (todo.count, mine.count - todo.count)
  }

  /// CSV of a shard: header, then one line per seed; written beside and renamed.
  public static func exportCSV(from store: ResultStore, ncol: Int, to path: String) throws {
    var text = (try store.columnNames()).joined(separator: ",") + "\n"
    for row in try store.rows(integerCount: 3) {
      text += (row.integers.map(String.init) + row.reals.map { "\($0)" }).joined(separator: ",") + "\n"
    }
    let temporary = "\(path).tmp-\(getpid())"
    try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
    guard rename(temporary, path) == 0 else { throw WorkerError("cannot write \(path)") }
  }
}

/// svd-reduce: stacks every seed's estimate and takes the top right singular vector.
public struct SVDReduce {
  public struct Result: Codable, Equatable, Sendable {
    public var nrow: Int
    public var ncol: Int
    public var blocks: Int
    public var seeds: String
    /// ‖vt − v‖ for the reduce's top right singular vector (sign chosen to match v).
    public var reduceError: Double
    /// The mean of ‖v_est − v‖ over the blocks (each sign chosen to match v).
    public var meanSingleBlockError: Double

    enum CodingKeys: String, CodingKey {
      case nrow, ncol, blocks, seeds
      case reduceError = "reduce_error"
      case meanSingleBlockError = "mean_single_block_error"
    }
  }

  /// Singular vectors have no sign of their own: the distance to v is taken with the sign
  /// that is closer, for the reduce and for every block alike.
  static func distance(_ estimate: ArraySlice<Double>, _ truth: [Double]) -> Double {
    var plus = 0.0
    var minus = 0.0
    for (a, b) in zip(estimate, truth) {
      plus += (a - b) * (a - b)
      minus += (a + b) * (a + b)
    }
    return min(plus, minus).squareRoot()
  }

  public static func run(shards: [String], nrow: Int, ncol: Int, expected: [Int]?) throws -> Result {
    guard !shards.isEmpty else { throw WorkerError("no shard files to reduce") }
    var owner: [Int: String] = [:]
    var duplicates: [Int] = []
    var rows: [(seed: Int, vector: [Double])] = []
    for shard in shards {
      let store: ResultStore
      let stored: [(integers: [Int], reals: [Double])]
      do {
        store = try ResultStore(readingFrom: shard, table: SVDMap.table(nrow: nrow, ncol: ncol))
        stored = try store.rows(integerCount: 3)
      } catch {
        throw WorkerError("\(shard): not a readable svd-map shard for \(nrow)x\(ncol) (\(error))")
      }
      for row in stored {
        guard row.reals.count == ncol + 1, row.integers.count == 3 else {
          throw WorkerError("\(shard): seed \(row.integers.last ?? -1) has \(row.reals.count - 1) vector entries, expected \(ncol)")
        }
        let seed = row.integers[2]
        if owner[seed] != nil { duplicates.append(seed) } else { owner[seed] = shard }
        rows.append((seed, Array(row.reals.dropFirst())))
      }
    }
    if !duplicates.isEmpty {
      throw WorkerError("seeds stored more than once: \(SeedList.describe(duplicates)) (in \(Set(duplicates.compactMap { owner[$0] }).sorted().joined(separator: ", ")) and another shard)")
    }
    if let expected {
      let missing = expected.filter { owner[$0] == nil }
      if !missing.isEmpty { throw WorkerError("seeds missing from the shards: \(SeedList.describe(missing))") }
    }
    rows.sort { $0.seed < $1.seed }
    let stacked = Matrix(rows: rows.count, columns: ncol, values: rows.flatMap(\.vector))
    let decomposition = try SingularValueDecomposition.decompose(stacked)
    let truth = SVDExperiment.v(ncol)
    let reduceError = distance(decomposition.vt.values[0..<ncol], truth)
    let single = rows.map { distance($0.vector[...], truth) }.reduce(0, +) / Double(rows.count)
    return Result(
      nrow: nrow, ncol: ncol, blocks: rows.count, seeds: SeedList.describe(rows.map(\.seed)), reduceError: reduceError,
      meanSingleBlockError: single)
  }
}
