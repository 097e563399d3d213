import AtomicFiles
import Foundation
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
  /// Also keep the shard's Σ XᵀX, for svd-reduce --exact (8·ncol² bytes per shard).
  public var keepGram = false
  /// Power iteration (default) or the course's full dgesdd.
  public var method = SVDMethod.power
  /// Compute every seed again: the shard is removed first.
  public var force = false

  /// Where the shards go: `--out`, else `$DATA_DERIV/svd`; never the directory the job
  /// happens to run in (a stray ./svd in a checkout is worse than a refusal).
  public static func outputDirectory(out: String?, dataDeriv: String?) throws -> String {
    if let out { return out }
    guard let dataDeriv else { throw WorkerError("svd-map: give --out DIR or set DATA_DERIV (the shard files need a directory)") }
    return "\(dataDeriv)/svd"
  }

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
  public static func gramTable(nrow: Int, ncol: Int) -> String { "gram_\(nrow)x\(ncol)" }
  public static func vectorColumns(_ ncol: Int) -> [String] {
    let width = max(3, String(ncol - 1).count)
    return (0..<ncol).map { "ve" + String(repeating: "0", count: width - String($0).count) + String($0) }
  }

  public var shardPath: String { "\(outputDirectory)/shard-\(task).sqlite" }

  @discardableResult
  public func run() throws -> (computed: Int, skipped: Int) {
    guard task >= 0, tasks >= 1 else { throw WorkerError("bad SLURM_ARRAY_TASK_ID/COUNT") }
    guard nrow > 0, ncol > 0, nrow <= 20_000, ncol <= 1998 else {
      throw WorkerError("--nrow \(nrow) --ncol \(ncol): sizes must be 1 to 20000 rows and 1 to 1998 columns (SQLite's column limit)")
    }
    try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
    if force {
      for path in [shardPath, shardPath + "-journal"] where unlink(path) != 0 && errno != ENOENT {
        throw WorkerError("svd-map: cannot remove \(path) for --force: \(String(cString: strerror(errno)))")
      }
    }
    let store = try ResultStore(
      path: shardPath, table: SVDMap.table(nrow: nrow, ncol: ncol), integerColumns: ["nrow", "ncol", "seed"],
      realColumns: ["v_alignment"] + SVDMap.vectorColumns(ncol))
    let mine = SeedList.share(seeds, task: task, of: tasks)
    let done = try store.storedSeeds()
    // Seeds another shard holds (a run split over a different task count) are not
    // computed again: the reduce refuses a seed stored twice.
    var elsewhere = Set<Int>()
    let names = (try? FileManager.default.contentsOfDirectory(atPath: outputDirectory)) ?? []
    for name in names where name.hasPrefix("shard-") && name.hasSuffix(".sqlite") && "\(outputDirectory)/\(name)" != shardPath {
      let other = try ResultStore(readingFrom: "\(outputDirectory)/\(name)", table: SVDMap.table(nrow: nrow, ncol: ncol))
      if let seeds = try? other.storedSeeds() { elsewhere.formUnion(seeds) }
    }
    let todo = mine.filter { !done.contains($0) && !elsewhere.contains($0) }
    let inOthers = mine.filter { !done.contains($0) && elsewhere.contains($0) }.count
    log("svd-map: task \(task) of \(tasks): \(mine.count) seeds (\(SeedList.describe(mine))), \(mine.count - todo.count - inOthers) already stored in \(shardPath)\(inOthers > 0 ? ", \(inOthers) in other shards" : "")")
    if todo.isEmpty {
      log("up to date: svd-map task \(task) of \(tasks): all \(mine.count) seeds are stored (--force computes them again)")
    }
    var gram: (seeds: Int, matrix: [Double])? = nil
    if keepGram {
      let table = SVDMap.gramTable(nrow: nrow, ncol: ncol)
      gram = try store.gram(table: table, n: ncol) ?? (0, [Double](repeating: 0, count: ncol * ncol))
      if gram!.seeds != done.count {
        throw WorkerError("\(shardPath): its Gram sum covers \(gram!.seeds) seeds but \(done.count) are stored (computed without --gram); remove the shard and run again")
      }
    }
    let started = Date()
    // Where the time goes, for the progress line: numpy's generator, then the vector.
    var drawing = 0.0
    var analyzing = 0.0
    // About a second of seeds per transaction (at least one seed).
    var batchStarted = Date()
    try store.begin()
    do {
      for (index, seed) in todo.enumerated() {
        let drawStarted = Date()
        let (x, norms) = SVDExperiment.draw(nrow: nrow, ncol: ncol, seed: seed)
        let analyzeStarted = Date()
        let row = try SVDExperiment.analyze(x, seed: seed, method: method, rowNormsSquared: norms)
        drawing += analyzeStarted.timeIntervalSince(drawStarted)
        analyzing += Date().timeIntervalSince(analyzeStarted)
        if let fallback = row.fallback { log("svd-map: seed \(seed): \(fallback)") }
        try store.insert(integers: [nrow, ncol, seed], reals: [row.vAlignment] + row.vEstimate)
        if var sum = gram {
          GramMatrix.accumulate(x, into: &sum.matrix)
          sum.seeds += 1
          gram = sum
        }
        let last = index == todo.count - 1
        if last || Date().timeIntervalSince(batchStarted) >= 1 {
          if let gram { try store.storeGram(table: SVDMap.gramTable(nrow: nrow, ncol: ncol), seeds: gram.seeds, matrix: gram.matrix) }
          try store.commit()
          if !last { try store.begin() }
          batchStarted = Date()
        }
        let elapsed = Date().timeIntervalSince(started)
        let perSeed = elapsed / Double(index + 1)
        let remaining = perSeed * Double(todo.count - index - 1)
        let done = Double(index + 1)
        log(
          String(format: "svd-map: %d/%d seeds, %.4f s per seed (draw %.4f s, ", index + 1, todo.count, perSeed, drawing / done)
            + method.rawValue
            + String(format: " %.4f s), about %.0f s left (seed %d: v_alignment %.6f)", analyzing / done, remaining, seed, row.vAlignment))
      }
      if todo.isEmpty { try store.commit() }
    } catch {
      store.rollback()
      throw error
    }
    return (todo.count, mine.count - todo.count)
  }

  /// This task's shard as CSV (`svd-map --csv`).
  public func exportCSV(to path: String) throws {
    try Self.exportCSV(from: ResultStore(readingFrom: shardPath, table: Self.table(nrow: nrow, ncol: ncol)), to: path)
  }

  /// CSV of a shard: header, then one line per seed; written beside and renamed.
  public static func exportCSV(from store: ResultStore, to path: String) throws {
    var text = (try store.columnNames()).joined(separator: ",") + "\n"
    for row in try store.rows(integerCount: 3) {
      text += (row.integers.map(String.init) + row.reals.map { "\($0)" }).joined(separator: ",") + "\n"
    }
    try AtomicFiles.write(text, to: path, makeDirectories: true)
  }
}

/// svd-reduce: stacks every seed's estimate and takes the top right singular vector.
public struct SVDReduce {
  /// The shard files of a directory: the SQLite ones, else the CSV ones (svd-map --csv).
  public static func shardFiles(in directory: String) throws -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    var shards = names.filter { $0.hasSuffix(".sqlite") }.sorted()
    if shards.isEmpty { shards = names.filter { $0.hasSuffix(".csv") }.sorted() }
    guard !shards.isEmpty else { throw WorkerError("no shard files (*.sqlite or *.csv) in \(directory)") }
    return shards.map { "\(directory)/\($0)" }
  }

  /// The reduce as a task: over the directory's shards, into `out` (JSON) when given,
  /// skipped when `out` was made from these very shards with these parameters.
  public static func run(
    directory: String, nrow: Int, ncol: Int, expected: [Int]?, exact: Bool, method: SVDMethod, out: String?, force: Bool,
    log: (String) -> Void
  ) throws -> Result {
    let shards = try shardFiles(in: directory)
    var recipe: Recipe? = nil
    if let out {
      let parameters = [
        "nrow": String(nrow), "ncol": String(ncol), "seeds": expected.map(SeedList.describe) ?? "", "exact": String(exact),
        "method": method.rawValue,
      ]
      recipe = try Recipe.hashing(
        task: "svd-reduce", files: Dictionary(uniqueKeysWithValues: shards.map { (($0 as NSString).lastPathComponent, $0) }),
        parameters: parameters)
      if !force, let recipe, UpToDate.isCurrent(recipe, outputs: [out]), let stored = try? ItemAnalysis.readJSON(Result.self, from: out) {
        log("up to date: svd-reduce \(out) (from these \(shards.count) shards; --force computes it again)")
        return stored
      }
      UpToDate.forget(out)
    }
    let result = try run(shards: shards, nrow: nrow, ncol: ncol, expected: expected, exact: exact, method: method, log: log)
    if let out, let recipe {
      try ItemAnalysis.writeJSON(result, to: out)
      try UpToDate.record(recipe, for: out)
    }
    log("svd-reduce: \(result.blocks) blocks: reduce error \(result.reduceError), mean single-block error \(result.meanSingleBlockError)\(result.exactError.map { ", exact (all X stacked) \($0)" } ?? "")")
    return result
  }

  public struct BlockError: Codable, Equatable, Sendable {
    public var blocks: Int
    public var error: Double
  }

  public struct Result: Codable, Equatable, Sendable {
    public var nrow: Int
    public var ncol: Int
    public var blocks: Int
    public var seeds: String
    /// ‖vt − v‖ for the reduce's top right singular vector (sign chosen to match v).
    public var reduceError: Double
    /// The mean of ‖v_est − v‖ over the blocks (each sign chosen to match v).
    public var meanSingleBlockError: Double
    /// The reduce over the first k seeds, for k = 1, 2, 5, 10, 20, 50, ... and all.
    public var errorByBlocks: [BlockError]
    /// ‖v_exact − v‖ for the top right singular vector of all X stacked (from Σ XᵀX), with --exact.
    public var exactError: Double?
    /// Per seed, in seed order: the signed v_alignment.
    public var vAlignments: [Double]

    enum CodingKeys: String, CodingKey {
      case nrow, ncol, blocks, seeds
      case reduceError = "reduce_error"
      case meanSingleBlockError = "mean_single_block_error"
      case errorByBlocks = "error_by_blocks"
      case exactError = "exact_error"
      case vAlignments = "v_alignments"
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

  /// 1, 2, 5, 10, 20, 50, ... below `total`, then `total`.
  static func blockCounts(_ total: Int) -> [Int] {
    var counts: [Int] = []
    var decade = 1
    while decade < total {
      for step in [1, 2, 5] where step * decade < total { counts.append(step * decade) }
      decade *= 10
    }
    return counts + [total]
  }

  struct ShardRow {
    var seed: Int
    var alignment: Double
    var vector: [Double]
  }

  /// The rows of an svd-map shard: SQLite, or the CSV that `svd-map --csv` writes.
  static func read(shard: String, nrow: Int, ncol: Int) throws -> [ShardRow] {
    if shard.hasSuffix(".csv") { return try readCSV(shard, nrow: nrow, ncol: ncol) }
    let stored: [(integers: [Int], reals: [Double])]
    do {
      let store = try ResultStore(readingFrom: shard, table: SVDMap.table(nrow: nrow, ncol: ncol))
      stored = try store.rows(integerCount: 3)
    } catch {
      throw WorkerError("\(shard): not a readable svd-map shard for \(nrow)x\(ncol) (\(error))")
    }
    return try stored.map { row in
      guard row.reals.count == ncol + 1, row.integers.count == 3 else {
        throw WorkerError("\(shard): seed \(row.integers.last ?? -1) has \(row.reals.count - 1) vector entries, expected \(ncol)")
      }
      return ShardRow(seed: row.integers[2], alignment: row.reals[0], vector: Array(row.reals.dropFirst()))
    }
  }

  static func readCSV(_ path: String, nrow: Int, ncol: Int) throws -> [ShardRow] {
    var reader = try CSVReader(path: path)
    let expected = ["nrow", "ncol", "seed", "v_alignment"] + SVDMap.vectorColumns(ncol)
    guard let header = try reader.next() else { throw WorkerError("\(path): empty file, expected the svd-map CSV header") }
    guard header.fields == expected else {
      throw WorkerError("\(path):1: the header has \(header.fields.count) columns (\(header.fields.prefix(5).joined(separator: ","))...), expected the \(expected.count) of svd-map for \(nrow)x\(ncol)")
    }
    var rows: [ShardRow] = []
    while let record = try reader.next() {
      guard record.fields.count == expected.count else {
        throw WorkerError("\(path):\(record.line): \(record.fields.count) fields, expected \(expected.count) (truncated file?)")
      }
      var numbers: [Double] = []
      numbers.reserveCapacity(expected.count)
      for (column, field) in record.fields.enumerated() {
        guard let value = Double(field), value.isFinite else {
          throw WorkerError("\(path):\(record.line): column \(expected[column]) is '\(field.prefix(40))', not a number")
        }
        numbers.append(value)
      }
      guard Int(numbers[0]) == nrow, Int(numbers[1]) == ncol else {
        throw WorkerError("\(path):\(record.line): a \(Int(numbers[0]))x\(Int(numbers[1])) row in a \(nrow)x\(ncol) reduce")
      }
      rows.append(ShardRow(seed: Int(numbers[2]), alignment: numbers[3], vector: Array(numbers[4...])))
    }
    return rows
  }

  public static func run(
    shards: [String], nrow: Int, ncol: Int, expected: [Int]?, exact: Bool = false, method: SVDMethod = .power,
    log: (String) -> Void = { _ in }
  ) throws -> Result {
    guard !shards.isEmpty else { throw WorkerError("no shard files to reduce") }
    var owner: [Int: String] = [:]
    var duplicates: [Int] = []
    var rows: [ShardRow] = []
    for shard in shards {
      for row in try read(shard: shard, nrow: nrow, ncol: ncol) {
        if owner[row.seed] != nil { duplicates.append(row.seed) } else { owner[row.seed] = shard }
        rows.append(row)
      }
    }
    if !duplicates.isEmpty {
      throw WorkerError("seeds stored more than once: \(SeedList.describe(duplicates)) (in \(Set(duplicates.compactMap { owner[$0] }).sorted().joined(separator: ", ")) and another shard)")
    }
    guard !rows.isEmpty else { throw WorkerError("the shards hold no seeds (\(shards.joined(separator: ", ")))") }
    if let expected {
      let missing = expected.filter { owner[$0] == nil }
      if !missing.isEmpty { throw WorkerError("seeds missing from the shards: \(SeedList.describe(missing))") }
      // Shards may hold more (an earlier, larger run): the reduce is over the seeds asked for.
      let wanted = Set(expected)
      let extra = rows.filter { !wanted.contains($0.seed) }.map(\.seed)
      if !extra.isEmpty {
        if exact {
          throw WorkerError("the shards also hold seeds \(SeedList.describe(extra)), which their Gram sums include; --exact needs the shards of exactly --seeds (use another --in directory)")
        }
        rows = rows.filter { wanted.contains($0.seed) }
      }
    }
    rows.sort { $0.seed < $1.seed }
    let truth = SVDExperiment.v(ncol)
    // All estimates stacked once, seeds in order; the reduce over the first k seeds is the
    // leading k rows.
    let stacked = rows.flatMap(\.vector)
    func reduce(_ count: Int) throws -> Double {
      switch method {
      case .full:
        let prefix = Matrix(rows: count, columns: ncol, values: Array(stacked[0..<(count * ncol)]))
        return distance(try SingularValueDecomposition.decompose(prefix).vt.values[0..<ncol], truth)
      case .power:
        let top = try stacked.withUnsafeBufferPointer { try TopSingularVector.compute($0, rows: count, columns: ncol) }
        if let fallback = top.fallback { log("svd-reduce: the first \(count) blocks: \(fallback)") }
        return distance(top.vector[...], truth)
      }
    }
    let byBlocks = try blockCounts(rows.count).map { BlockError(blocks: $0, error: try reduce($0)) }
    let single = rows.map { distance($0.vector[...], truth) }.reduce(0, +) / Double(rows.count)
    var exactError: Double? = nil
    if exact {
      var sum = [Double](repeating: 0, count: ncol * ncol)
      for shard in shards {
        guard !shard.hasSuffix(".csv") else { throw WorkerError("\(shard): --exact needs the SQLite shards (CSV holds no Gram matrix)") }
        let store = try ResultStore(readingFrom: shard, table: SVDMap.table(nrow: nrow, ncol: ncol))
        let stored = rows.filter { owner[$0.seed] == shard }.count
        guard let gram = try store.gram(table: SVDMap.gramTable(nrow: nrow, ncol: ncol), n: ncol) else {
          if stored == 0 { continue }  // a task that had no seeds (more tasks than seeds)
          throw WorkerError("\(shard): no Gram matrix; run svd-map with --gram for --exact")
        }
        guard gram.seeds == stored else { throw WorkerError("\(shard): its Gram sum covers \(gram.seeds) seeds, the shard holds \(stored)") }
        for index in 0..<sum.count { sum[index] += gram.matrix[index] }
      }
      exactError = distance(try GramMatrix.topEigenvector(sum, n: ncol)[...], truth)
    }
    return Result(
      nrow: nrow, ncol: ncol, blocks: rows.count, seeds: SeedList.describe(rows.map(\.seed)),
      reduceError: byBlocks.last!.error, meanSingleBlockError: single, errorByBlocks: byBlocks, exactError: exactError,
      vAlignments: rows.map(\.alignment))
  }
}
