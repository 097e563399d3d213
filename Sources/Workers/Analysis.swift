import GRDBSQLite
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

/// One analyze task's share of an item: a contiguous block of rows.
public struct ShardAnalysis: Codable, Equatable, Sendable {
  public var item: String
  public var shard: Int
  public var shards: Int
  public var firstRow: Int
  public var rows: Int
  public var columns: [String: ColumnStatistics]
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
}

/// analyze (one array task) and gather (after the array) for the data pipeline's items,
/// over `DATA_DERIV/<item>/data.sqlite` as convert wrote it.
public enum ItemAnalysis {
  public static func database(root: String, item: String) -> String { "\(root)/\(item)/data.sqlite" }
  static func shardPath(root: String, item: String, shard: Int, of shards: Int) -> String {
    "\(root)/\(item)/analysis/shard-\(shard)-of-\(shards).json"
  }

  /// The numeric columns of `records` in table order: those holding numbers and no text
  /// (convert declares no column types; it stores each value as its own kind). One scan.
  static func numericColumns(_ database: OpaquePointer, path: String) throws -> [(index: Int32, name: String)] {
    let names = try columnNames(database, path: path)
    var statement: OpaquePointer?
    let probes = names.map { "sum(typeof(\(quoted($0))) IN ('integer', 'real')), sum(typeof(\(quoted($0))) IN ('text', 'blob'))" }
    guard sqlite3_prepare_v2(database, "SELECT \(probes.joined(separator: ", ")) FROM records", -1, &statement, nil) == SQLITE_OK,
      sqlite3_step(statement) == SQLITE_ROW
    else {
      sqlite3_finalize(statement)
      throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database))) (corrupt file?)")
    }
    defer { sqlite3_finalize(statement) }
    var columns: [(Int32, String)] = []
    for (index, name) in names.enumerated() {
      let numbers = sqlite3_column_int64(statement, Int32(2 * index))
      let texts = sqlite3_column_int64(statement, Int32(2 * index + 1))
      if numbers > 0 && texts == 0 { columns.append((Int32(index), name)) }
    }
    return columns
  }

  /// An SQL identifier, quoted (column names come from the raw file's header).
  static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

  /// An item's table as a dashboard draws it: every numeric column, sampled to at most
  /// `maxPoints` rows (every n-th row, so a 10 GB table stays a small page), and the phase
  /// column, when there is one: the first text column with at most 8 distinct values (the
  /// data set's `condition`, rest/task). Per phase, the statistics of every numeric
  /// column over all rows (one streamed pass), not over the sample.
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

  public static func table(root: String, item: String, maxPoints: Int = 1500) throws -> Table {
    let path = database(root: root, item: item)
    let db = try open(path)
    defer { sqlite3_close(db) }
    let numeric = try numericColumns(db, path: path)
    guard !numeric.isEmpty else { throw WorkerError("\(path): no numeric column to draw") }
    let phaseColumn = try phaseColumn(db, path: path, excluding: Set(numeric.map(\.name)))
    let step = max(1, (try count(db, path: path) + maxPoints - 1) / maxPoints)
    let selected = numeric.map { quoted($0.name) } + (phaseColumn.map { [quoted($0)] } ?? [])
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(db, "SELECT \(selected.joined(separator: ", ")) FROM records ORDER BY rowid", -1, &statement, nil) == SQLITE_OK else {
      throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(db)))")
    }
    defer { sqlite3_finalize(statement) }
    var values = Array(repeating: [Double?](), count: numeric.count)
    var phases: [String] = []
    var statistics: [(phase: String, columns: [String: ColumnStatistics])] = []
    var row = 0
    while sqlite3_step(statement) == SQLITE_ROW {
      let phase = phaseColumn == nil ? "" : sqlite3_column_text(statement, Int32(numeric.count)).map { String(cString: $0) } ?? ""
      var slot = statistics.firstIndex { $0.phase == phase }
      if slot == nil, phaseColumn != nil {
        statistics.append((phase, [:]))
        slot = statistics.count - 1
      }
      for column in 0..<numeric.count {
        let empty = sqlite3_column_type(statement, Int32(column)) == SQLITE_NULL
        let value = sqlite3_column_double(statement, Int32(column))
        if row % step == 0 { values[column].append(empty ? nil : value) }
        if let slot, !empty { statistics[slot].columns[numeric[column].name, default: ColumnStatistics()].add(value) }
      }
      if row % step == 0, phaseColumn != nil { phases.append(phase) }
      row += 1
    }
    return Table(
      columns: numeric.map(\.name), values: values, step: step, phaseColumn: phaseColumn, phases: phases, phaseStatistics: statistics)
  }

  /// The columns of `records`, in table order.
  static func columnNames(_ database: OpaquePointer, path: String) throws -> [String] {
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, "PRAGMA table_info(records)", -1, &statement, nil) == SQLITE_OK else {
      throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database)))")
    }
    var names: [String] = []
    while sqlite3_step(statement) == SQLITE_ROW { names.append(String(cString: sqlite3_column_text(statement, 1))) }
    sqlite3_finalize(statement)
    guard !names.isEmpty else { throw WorkerError("\(path): no table 'records' (run convert for this item first)") }
    return names
  }

  /// The first non-numeric column with between 2 and 8 distinct values (in its first
  /// million rows: enough to tell a phase label from free text), if any.
  static func phaseColumn(_ database: OpaquePointer, path: String, excluding numeric: Set<String>) throws -> String? {
    var statement: OpaquePointer?
    for name in try columnNames(database, path: path) where !numeric.contains(name) {
      guard sqlite3_prepare_v2(database, "SELECT count(DISTINCT \(quoted(name))) FROM (SELECT \(quoted(name)) FROM records LIMIT 1000000)", -1, &statement, nil) == SQLITE_OK,
        sqlite3_step(statement) == SQLITE_ROW
      else {
        sqlite3_finalize(statement)
        throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database))) (corrupt file?)")
      }
      let distinct = sqlite3_column_int64(statement, 0)
      sqlite3_finalize(statement)
      if (2...8).contains(distinct) { return name }
    }
    return nil
  }

  static func open(_ path: String) throws -> OpaquePointer {
    guard FileManager.default.fileExists(atPath: path) else {
      throw WorkerError("\(path) does not exist (run convert for this item first)")
    }
    var handle: OpaquePointer?
    guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let handle else {
      throw WorkerError("cannot open \(path) as SQLite")
    }
    return handle
  }

  static func count(_ database: OpaquePointer, path: String) throws -> Int {
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, "SELECT count(*) FROM records", -1, &statement, nil) == SQLITE_OK,
      sqlite3_step(statement) == SQLITE_ROW
    else {
      sqlite3_finalize(statement)
      throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database))) (corrupt file?)")
    }
    defer { sqlite3_finalize(statement) }
    return Int(sqlite3_column_int64(statement, 0))
  }

  /// Statistics of this task's block of rows, written atomically to
  /// `<item>/analysis/shard-<k>-of-<n>.json`.
  @discardableResult
  public static func analyze(root: String, item: String, shard: Int, shards: Int, log: (String) -> Void) throws -> ShardAnalysis {
    guard shards >= 1, shard >= 0, shard < shards else {
      throw WorkerError("analyze: shard \(shard) of \(shards) is out of range (0 ≤ shard < shards)")
    }
    let path = database(root: root, item: item)
    let db = try open(path)
    defer { sqlite3_close(db) }
    let total = try count(db, path: path)
    let columns = try numericColumns(db, path: path)
    let first = total * shard / shards
    let end = total * (shard + 1) / shards
    var statistics = [ColumnStatistics](repeating: ColumnStatistics(), count: columns.count)
    var statement: OpaquePointer?
    let sql = "SELECT * FROM records ORDER BY rowid LIMIT \(end - first) OFFSET \(first)"
    guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else {
      throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(db)))")
    }
    defer { sqlite3_finalize(statement) }
    var rows = 0
    while true {
      let step = sqlite3_step(statement)
      if step == SQLITE_DONE { break }
      guard step == SQLITE_ROW else { throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(db))) (corrupt file?)") }
      rows += 1
      for (slot, column) in columns.enumerated() {
        let type = sqlite3_column_type(statement, column.index)
        if type == SQLITE_INTEGER || type == SQLITE_FLOAT { statistics[slot].add(sqlite3_column_double(statement, column.index)) }
      }
    }
    let result = ShardAnalysis(
      item: item, shard: shard, shards: shards, firstRow: first, rows: rows,
      columns: Dictionary(uniqueKeysWithValues: zip(columns.map(\.name), statistics)))
    try writeJSON(result, to: shardPath(root: root, item: item, shard: shard, of: shards))
    log("analyze: \(item) shard \(shard) of \(shards): rows \(first + 1)-\(end) of \(total), \(columns.count) numeric columns")
    return result
  }

  /// Merges every shard of the item into `<item>/summary.json`; names missing shards and
  /// refuses shards that disagree on the split or do not add up to the table.
  @discardableResult
  public static func gather(root: String, item: String, log: (String) -> Void) throws -> ItemSummary {
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
    let db = try open(path)
    defer { sqlite3_close(db) }
    let total = try count(db, path: path)
    let columns = try numericColumns(db, path: path).map(\.name)
    let rows = parts.reduce(0) { $0 + $1.rows }
    guard rows == total else {
      throw WorkerError("gather: \(item): the shards cover \(rows) rows but \(path) has \(total); rerun analyze (the data changed?)")
    }
    var merged = [String: ColumnStatistics]()
    for part in parts.sorted(by: { $0.shard < $1.shard }) {
      for (name, statistics) in part.columns { merged[name, default: ColumnStatistics()].merge(statistics) }
    }
    let summary = ItemSummary(
      item: item, rows: total, shards: shards,
      columns: columns.map { name in
        let s = merged[name] ?? ColumnStatistics()
        return ItemSummary.Column(
          name: name, count: s.count, mean: s.mean, std: s.standardDeviation, min: s.count > 0 ? s.min : 0,
          max: s.count > 0 ? s.max : 0)
      })
    try writeJSON(summary, to: "\(root)/\(item)/summary.json")
    log("gather: \(item): \(total) rows from \(shards) shards, \(columns.count) numeric columns -> \(root)/\(item)/summary.json")
    return summary
  }

  public static func writeJSON<Value: Encodable>(_ value: Value, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFile.write(encoder.encode(value) + Data("\n".utf8), to: path)
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
