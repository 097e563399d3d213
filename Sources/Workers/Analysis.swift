import AtomicFiles
import GRDB
import Foundation

/// Running statistics of one column (Welford), mergeable across shards (Chan et al.), so
/// a scatter over array tasks and a gather give the same mean and spread as one pass.
public struct ColumnStatistics: Codable, Equatable, Sendable {
  public var count = 0
  public var mean = 0.0
  /// Sum of squared deviations from the mean.
  public var m2 = 0.0
  public var min = Double.infinity
  public var max = -Double.infinity

  public init() {}

  public mutating func add(_ value: Double) {
    count += 1
    let delta = value - mean
    mean += delta / Double(count)
    m2 += delta * (value - mean)
    min = Swift.min(min, value)
    max = Swift.max(max, value)
  }

  public mutating func merge(_ other: ColumnStatistics) {
    guard other.count > 0 else { return }
    guard count > 0 else {
      self = other
      return
    }
    let total = count + other.count
    let delta = other.mean - mean
    mean += delta * Double(other.count) / Double(total)
    m2 += other.m2 + delta * delta * Double(count) * Double(other.count) / Double(total)
    count = total
    min = Swift.min(min, other.min)
    max = Swift.max(max, other.max)
  }

  /// The sample standard deviation (n − 1), 0 for fewer than two values.
  public var standardDeviation: Double { count > 1 ? (m2 / Double(count - 1)).squareRoot() : 0 }

  enum CodingKeys: String, CodingKey { case count, mean, m2, min, max }

  /// A column with no values (a shard with no rows) has no min or max: JSON has no
  /// infinity, so they are left out and read back as the empty column's ±infinity.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    count = try container.decode(Int.self, forKey: .count)
    mean = try container.decode(Double.self, forKey: .mean)
    m2 = try container.decode(Double.self, forKey: .m2)
    min = try container.decodeIfPresent(Double.self, forKey: .min) ?? .infinity
    max = try container.decodeIfPresent(Double.self, forKey: .max) ?? -.infinity
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(count, forKey: .count)
    try container.encode(mean, forKey: .mean)
    try container.encode(m2, forKey: .m2)
    if count > 0 {
      try container.encode(min, forKey: .min)
      try container.encode(max, forKey: .max)
    }
  }
}

/// The statistics of every column over the rows of one phase (a value of the item's phase
/// column, such as the data set's rest/task `condition`).
public struct PhaseStatistics: Codable, Equatable, Sendable {
  public var phase: String
  public var columns: [String: ColumnStatistics]
}

/// One analyze task's share of an item: a contiguous range of rowids (convert numbers rows
/// 1...n, so this is a block of rows), statistics of every column that held numbers in it,
/// over all its rows and per phase.
public struct ShardAnalysis: Codable, Equatable, Sendable {
  public var item: String
  public var shard: Int
  public var shards: Int
  /// The first row of the range, counted from the table's first rowid (0-based).
  public var firstRow: Int
  public var rows: Int
  public var columns: [String: ColumnStatistics]
  /// Columns that held text or blobs in this range: not numeric, whatever the others hold.
  public var textColumns: [String]
  /// The item's phase column (every shard finds the same one: see `phaseColumn`).
  public var phaseColumn: String?
  /// Per phase, in order of first appearance in the range; empty without a phase column.
  public var phases: [PhaseStatistics]
}

/// The gathered analysis of one item (`summary.json`), what visualize and publish read.
public struct ItemSummary: Codable, Equatable, Sendable {
  public struct Column: Codable, Equatable, Sendable {
    public var name: String
    public var count: Int
    public var mean: Double
    public var std: Double
    public var min: Double
    public var max: Double
  }

  public var item: String
  public var rows: Int
  public var shards: Int
  /// In the table's column order.
  public var columns: [Column]
  public var phaseColumn: String?
  /// Per phase (in order of first appearance), the numeric columns' statistics over all
  /// of the phase's rows: what the dashboard's phase dots and table show, so visualize
  /// needs only a sample of the rows, not another pass over them.
  public var phases: [PhaseStatistics]
}

/// analyze (one array task) and gather (after the array) for the data pipeline's items,
/// over `DATA_DERIV/<item>/data.sqlite` as convert wrote it.
public enum ItemAnalysis {
  public static func database(root: String, item: String) -> String { "\(root)/\(item)/data.sqlite" }
  static func shardPath(root: String, item: String, shard: Int, of shards: Int) -> String {
    "\(root)/\(item)/analysis/shard-\(shard)-of-\(shards).json"
  }

  /// An SQL identifier, quoted (column names come from the raw file's header).
  static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

  /// An item's table as a dashboard draws it: every numeric column, sampled to at most
  /// `maxPoints` rows (every n-th row, so a 10 GB table stays a small page), and the phase
  /// of each sampled row. The columns and the per-phase statistics over all rows come from
  /// the gathered summary: the sample is `maxPoints` seeks by rowid, not a pass over the
  /// table (which made visualize the pipeline's slowest stage).
  public struct Table: Sendable {
    public var columns: [String]
    /// `values[c][i]`: column c at sampled row i (nil where the cell is empty).
    public var values: [[Double?]]
    public var step: Int
    public var phaseColumn: String?
    /// The phase of each sampled row.
    public var phases: [String]
    /// Phase -> column -> statistics, phases in order of first appearance.
    public var phaseStatistics: [(phase: String, columns: [String: ColumnStatistics])]
  }

  public static func table(root: String, item: String, summary: ItemSummary, maxPoints: Int = 1500) throws -> Table {
    let path = database(root: root, item: item)
    let numeric = summary.columns.map(\.name)
    guard !numeric.isEmpty else { throw WorkerError("\(path): no numeric column to draw") }
    return try reading(path) { db in
      let step = max(1, (summary.rows + maxPoints - 1) / maxPoints)
      let selected = numeric.map(quoted) + (summary.phaseColumn.map { ["CAST(\(quoted($0)) AS TEXT)"] } ?? [])
      let low = try Int.fetchOne(db, sql: "SELECT min(rowid) FROM records") ?? 1
      // The next row at or after each sampled rowid: one B-tree seek each.
      let sample = try db.makeStatement(sql: "SELECT rowid, \(selected.joined(separator: ", ")) FROM records WHERE rowid >= ? ORDER BY rowid LIMIT 1")
      var values = Array(repeating: [Double?](), count: numeric.count)
      var phases: [String] = []
      var rowid = low
      for _ in stride(from: 0, to: summary.rows, by: step) {
        guard let record = try Row.fetchOne(sample, arguments: [rowid]) else { break }
        for column in 0..<numeric.count {
          values[column].append(record.hasNull(atIndex: column + 1) ? nil : record[column + 1] as Double)
        }
        if summary.phaseColumn != nil { phases.append((record[numeric.count + 1] as String?) ?? "") }
        rowid = (record[0] as Int) + step
      }
      return Table(
        columns: numeric, values: values, step: step, phaseColumn: summary.phaseColumn, phases: phases,
        phaseStatistics: summary.phases.map { ($0.phase, $0.columns) })
    }
  }

  /// The columns of `records`, in table order.
  static func columnNames(_ db: Database, path: String) throws -> [String] {
    let names = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('records')")
    guard !names.isEmpty else { throw WorkerError("\(path): no table 'records' (run convert for this item first)") }
    return names
  }

  /// The first column holding text with between 2 and 8 distinct values in the table's
  /// first million rows (enough to tell a phase label from free text), if any. It reads
  /// only those rows, so every analyze task finds the same column without a full pass.
  static func phaseColumn(_ db: Database, path: String) throws -> String? {
    for name in try columnNames(db, path: path) {
      let column = quoted(name)
      let sql = "SELECT count(DISTINCT \(column)), sum(typeof(\(column)) = 'text') FROM (SELECT \(column) FROM records LIMIT 1000000)"
      guard let row = try Row.fetchOne(db, sql: sql) else { continue }
      let (distinct, texts) = (row[0] as Int? ?? 0, row[1] as Int? ?? 0)
      if texts > 0, (2...8).contains(distinct) { return name }
    }
    return nil
  }

  /// Runs `body` on the item's database opened read-only; SQLite's errors (a truncated or
  /// foreign file) become one line naming the file.
  static func reading<T>(_ path: String, _ body: (Database) throws -> T) throws -> T {
    var configuration = Configuration()
    configuration.readonly = true
    do {
      return try DatabaseQueue(path: try existing(path), configuration: configuration).read(body)
    } catch let error as DatabaseError {
      throw WorkerError("\(path): \(error.message ?? "\(error.resultCode)") (corrupt file?)")
    }
  }

  /// The item's database path, when convert has made it.
  static func existing(_ path: String) throws -> String {
    guard FileManager.default.fileExists(atPath: path) else {
      throw WorkerError("\(path) does not exist (run convert for this item first)")
    }
    return path
  }

  static func count(_ db: Database) throws -> Int { try Int.fetchOne(db, sql: "SELECT count(*) FROM records") ?? 0 }

  /// Statistics of this task's range of rowids, written atomically to
  /// `<item>/analysis/shard-<k>-of-<n>.json`. One cursor over the range: SQLite seeks to
  /// its first rowid in the table's B-tree, so a shard reads only its own rows (LIMIT and
  /// OFFSET stepped over every row before it, and a whole-table type probe read them all).
  @discardableResult
  public static func analyze(
    root: String, item: String, shard: Int, shards: Int, force: Bool = false, log: (String) -> Void
  ) throws -> ShardAnalysis {
    guard shards >= 1, shard >= 0, shard < shards else {
      throw WorkerError("analyze: shard \(shard) of \(shards) is out of range (0 ≤ shard < shards)")
    }
    let path = database(root: root, item: item)
    let output = shardPath(root: root, item: item, shard: shard, of: shards)
    let recipe = try Recipe.hashing(
      task: "analyze", files: ["database": try existing(path)],
      parameters: ["shard": String(shard), "shards": String(shards), "statistics": "columns and phases"])
    if !force, UpToDate.isCurrent(recipe, outputs: [output]), let stored = try? readJSON(ShardAnalysis.self, from: output) {
      log("up to date: analyze \(item) shard \(shard) of \(shards) (\(output); --force recomputes)")
      return stored
    }
    UpToDate.forget(output)
    let result = try reading(path) { db in
      let names = try columnNames(db, path: path)
      let phaseColumn = try phaseColumn(db, path: path)
      let bounds = try Row.fetchOne(db, sql: "SELECT min(rowid), max(rowid) FROM records")
      let low: Int = bounds?[0] ?? 1
      let span: Int = bounds.flatMap { $0[1] as Int? }.map { $0 - low + 1 } ?? 0
      let first = span * shard / shards
      let end = span * (shard + 1) / shards
      // Per column: its value when it is a number (else NULL), and whether it is text.
      let outputs = names.map { name in
        let column = quoted(name)
        return "CASE WHEN typeof(\(column)) IN ('integer', 'real') THEN \(column) END, typeof(\(column)) IN ('text', 'blob')"
      }
      let phaseOutput = phaseColumn.map { ["CAST(\(quoted($0)) AS TEXT)"] } ?? []
      let cursor = try Row.fetchCursor(
        db, sql: "SELECT \((outputs + phaseOutput).joined(separator: ", ")) FROM records WHERE rowid >= ? AND rowid < ? ORDER BY rowid",
        arguments: [low + first, low + end])
      let empty = [ColumnStatistics](repeating: ColumnStatistics(), count: names.count)
      var statistics = empty
      var phases: [(phase: String, statistics: [ColumnStatistics])] = []
      var text = [Bool](repeating: false, count: names.count)
      var rows = 0
      while let row = try cursor.next() {
        rows += 1
        var slot: Int?
        if phaseColumn != nil {
          let phase = (row[2 * names.count] as String?) ?? ""
          slot = phases.firstIndex { $0.phase == phase }
          if slot == nil {
            phases.append((phase, empty))
            slot = phases.count - 1
          }
        }
        for index in 0..<names.count {
          if !row.hasNull(atIndex: 2 * index) {
            let value = row[2 * index] as Double
            statistics[index].add(value)
            if let slot { phases[slot].statistics[index].add(value) }
          }
          if !text[index], row[2 * index + 1] as Int64 != 0 { text[index] = true }
        }
      }
      let numbers = names.indices.filter { statistics[$0].count > 0 }
      log("analyze: \(item) shard \(shard) of \(shards): \(rows) rows (rowids \(low + first)-\(low + end - 1)), \(numbers.filter { !text[$0] }.count) numeric columns")
      return ShardAnalysis(
        item: item, shard: shard, shards: shards, firstRow: first, rows: rows,
        columns: Dictionary(uniqueKeysWithValues: numbers.map { (names[$0], statistics[$0]) }),
        textColumns: names.indices.filter { text[$0] }.map { names[$0] }, phaseColumn: phaseColumn,
        phases: phases.map { entry in
          PhaseStatistics(
            phase: entry.phase,
            columns: Dictionary(uniqueKeysWithValues: numbers.map { (names[$0], entry.statistics[$0]) }))
        })
    }
    try writeJSON(result, to: output)
    try UpToDate.record(recipe, for: output)
    return result
  }

  /// Merges every shard of the item into `<item>/summary.json`; names missing shards and
  /// refuses shards that disagree on the split or do not add up to the table.
  @discardableResult
  public static func gather(root: String, item: String, force: Bool = false, log: (String) -> Void) throws -> ItemSummary {
    let directory = "\(root)/\(item)/analysis"
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
      $0.hasPrefix("shard-") && $0.hasSuffix(".json")
    }
    guard !names.isEmpty else { throw WorkerError("gather: no shard results in \(directory) (did the analyze array run?)") }
    var parts: [ShardAnalysis] = []
    for name in names.sorted() {
      let path = "\(directory)/\(name)"
      do {
        parts.append(try readJSON(ShardAnalysis.self, from: path))
      } catch let error as WorkerError {
        throw WorkerError("gather: \(error.message); rerun that array task")
      }
    }
    // Only the newest split counts: a rerun with another task count leaves older files.
    let shards = parts.map(\.shards).max()!
    parts = parts.filter { $0.shards == shards }
    let present = Set(parts.map(\.shard))
    let missing = (0..<shards).filter { !present.contains($0) }
    guard missing.isEmpty else {
      throw WorkerError("gather: \(item): shard(s) \(missing.map(String.init).joined(separator: ", ")) of \(shards) missing in \(directory); rerun those array tasks")
    }
    let path = database(root: root, item: item)
    let output = "\(root)/\(item)/summary.json"
    var files = ["database": try existing(path)]
    for part in parts { files["analysis/shard-\(part.shard)-of-\(shards).json"] = shardPath(root: root, item: item, shard: part.shard, of: shards) }
    let recipe = try Recipe.hashing(task: "gather", files: files)
    if !force, UpToDate.isCurrent(recipe, outputs: [output]), let stored = try? readJSON(ItemSummary.self, from: output) {
      log("up to date: gather \(item) (\(output); --force recomputes)")
      return stored
    }
    UpToDate.forget(output)
    let (total, tableColumns) = try reading(path) { db in (try count(db), try columnNames(db, path: path)) }
    let rows = parts.reduce(0) { $0 + $1.rows }
    guard rows == total else {
      throw WorkerError("gather: \(item): the shards cover \(rows) rows but \(path) has \(total); rerun analyze (the data changed?)")
    }
    // Numeric: numbers in some shard and text in none (what a whole-table probe finds).
    let text = Set(parts.flatMap(\.textColumns))
    let columns = tableColumns.filter { name in !text.contains(name) && parts.contains { $0.columns[name] != nil } }
    guard Set(parts.map(\.phaseColumn)).count == 1 else {
      throw WorkerError("gather: \(item): the shards name different phase columns; rerun analyze (the data changed?)")
    }
    var merged = [String: ColumnStatistics]()
    var phases: [PhaseStatistics] = []
    for part in parts.sorted(by: { $0.shard < $1.shard }) {
      for (name, statistics) in part.columns { merged[name, default: ColumnStatistics()].merge(statistics) }
      for entry in part.phases {
        let slot = phases.firstIndex { $0.phase == entry.phase } ?? {
          phases.append(PhaseStatistics(phase: entry.phase, columns: [:]))
          return phases.count - 1
        }()
        for (name, statistics) in entry.columns { phases[slot].columns[name, default: ColumnStatistics()].merge(statistics) }
      }
    }
    let numeric = Set(columns)
    for index in phases.indices { phases[index].columns = phases[index].columns.filter { numeric.contains($0.key) } }
    let summary = ItemSummary(
      item: item, rows: total, shards: shards,
      columns: columns.map { name in
        let s = merged[name] ?? ColumnStatistics()
        return ItemSummary.Column(
          name: name, count: s.count, mean: s.mean, std: s.standardDeviation, min: s.count > 0 ? s.min : 0,
          max: s.count > 0 ? s.max : 0)
      },
      phaseColumn: parts[0].phaseColumn, phases: phases)
    try writeJSON(summary, to: output)
    try UpToDate.record(recipe, for: output)
    log("gather: \(item): \(total) rows from \(shards) shards, \(columns.count) numeric columns -> \(root)/\(item)/summary.json")
    return summary
  }

  public static func writeJSON<Value: Encodable>(_ value: Value, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFiles.write(encoder.encode(value) + Data("\n".utf8), to: path, makeDirectories: true)
  }

  public static func readJSON<Value: Decodable>(_ type: Value.Type, from path: String) throws -> Value {
    let decoder = JSONDecoder()
    do {
      return try decoder.decode(type, from: Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
      throw WorkerError("\(path): not a readable \(type) (\(error.localizedDescription))")
    }
  }
}
