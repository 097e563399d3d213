import GRDBSQLite
public import Foundation

public struct WorkerError: Error, Equatable, CustomStringConvertible, Sendable {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }

  /// Any error as one line that names the file and the reason, instead of Foundation's
  /// `Error Domain=NSCocoaErrorDomain Code=512 "(null)" UserInfo={...}`.
  public static func oneLine(_ error: any Error) -> String {
    if let worker = error as? WorkerError { return worker.message }
    let ns = error as NSError
    if ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain {
      let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
      // The underlying error is a POSIXError value, not an NSError, in corelibs Foundation.
      let posix = ns.domain == NSPOSIXErrorDomain ? ns : (ns.userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
      let reason = posix.flatMap { $0.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32($0.code))) : nil }
        ?? ns.localizedDescription
      return path.map { "\($0): \(reason)" } ?? reason
    }
    let text = "\(error)"
    return text.split(separator: "\n").first.map(String.init) ?? text
  }
}

/// One SQLite file of experiment rows, one table per experiment. Rows are committed in
/// batches, so a killed task leaves only whole rows, and a rerun skips what is stored.
public final class ResultStore {
  let database: OpaquePointer
  public let path: String
  public let table: String
  public let columns: [String]

  /// `columns` after the key column `seed`; all REAL except the leading INTEGER ones.
  public init(path: String, table: String, integerColumns: [String], realColumns: [String]) throws {
    var handle: OpaquePointer?
    guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, let handle else {
      throw WorkerError("cannot open \(path) as SQLite")
    }
    database = handle
    self.path = path
    self.table = table
    columns = integerColumns + realColumns
    let definitions = integerColumns.map { "\($0) INTEGER NOT NULL" } + realColumns.map { "\($0) REAL NOT NULL" }
    try execute("PRAGMA busy_timeout = 30000")
    try execute("CREATE TABLE IF NOT EXISTS \(table) (\(definitions.joined(separator: ", ")), PRIMARY KEY (seed))")
  }

  /// Opens an existing file read-only (for reduce).
  public init(readingFrom path: String, table: String) throws {
    var handle: OpaquePointer?
    guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let handle else {
      throw WorkerError("cannot open \(path) as SQLite")
    }
    database = handle
    self.path = path
    self.table = table
    columns = []
  }

  var insertStatement: OpaquePointer?

  deinit {
    sqlite3_finalize(insertStatement)
    sqlite3_close(database)
  }

  func execute(_ sql: String) throws {
    var message: UnsafeMutablePointer<CChar>?
    if sqlite3_exec(database, sql, nil, nil, &message) != SQLITE_OK {
      let text = message.map { String(cString: $0) } ?? "unknown error"
      sqlite3_free(message)
      throw WorkerError("\(path): \(text)")
    }
  }

  public func storedSeeds() throws -> Set<Int> {
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, "SELECT seed FROM \(table)", -1, &statement, nil) == SQLITE_OK else {
      throw WorkerError("\(path): no table \(table) (\(String(cString: sqlite3_errmsg(database))))")
    }
    defer { sqlite3_finalize(statement) }
    var seeds = Set<Int>()
    while sqlite3_step(statement) == SQLITE_ROW { seeds.insert(Int(sqlite3_column_int64(statement, 0))) }
    return seeds
  }

  /// Rows go in batches, each one transaction (`begin`, inserts, `commit`): a killed task
  /// leaves only whole batches, and a seed's row and the Gram sum that counts it are in
  /// the same one. One fsync'd commit per seed cost more than the seed's vector.
  public func begin() throws { try execute("BEGIN IMMEDIATE") }
  public func commit() throws { try execute("COMMIT") }
  public func rollback() { try? execute("ROLLBACK") }

  /// The shard's running Gram sum (one row), inside the caller's transaction.
  public func storeGram(table: String, seeds: Int, matrix: [Double]) throws {
    try execute("CREATE TABLE IF NOT EXISTS \(table) (id INTEGER PRIMARY KEY CHECK (id = 0), seeds INTEGER NOT NULL, matrix BLOB NOT NULL)")
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, "INSERT OR REPLACE INTO \(table) VALUES (0, ?, ?)", -1, &statement, nil) == SQLITE_OK else {
      throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database)))")
    }
    defer { sqlite3_finalize(statement) }
    sqlite3_bind_int64(statement, 1, Int64(seeds))
    let status = matrix.withUnsafeBytes { bytes in
      sqlite3_bind_blob(statement, 2, bytes.baseAddress, Int32(bytes.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self))
      return sqlite3_step(statement)
    }
    guard status == SQLITE_DONE else { throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database)))") }
  }

  /// The stored Gram sum and how many seeds it covers, or nil when the shard has none.
  public func gram(table: String, n: Int) throws -> (seeds: Int, matrix: [Double])? {
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, "SELECT seeds, matrix FROM \(table) WHERE id = 0", -1, &statement, nil) == SQLITE_OK else {
      return nil
    }
    defer { sqlite3_finalize(statement) }
    guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
    let seeds = Int(sqlite3_column_int64(statement, 0))
    let size = Int(sqlite3_column_bytes(statement, 1))
    guard size == n * n * MemoryLayout<Double>.size, let blob = sqlite3_column_blob(statement, 1) else {
      throw WorkerError("\(path): the Gram matrix holds \(size) bytes, not \(n)x\(n) doubles (corrupt shard?)")
    }
    var matrix = [Double](repeating: 0, count: n * n)
    matrix.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: blob, count: size)) }
    return (seeds, matrix)
  }

  /// One row; the INSERT (a thousand placeholders) is prepared once per store.
  public func insert(integers: [Int], reals: [Double]) throws {
    if insertStatement == nil {
      let placeholders = Array(repeating: "?", count: integers.count + reals.count).joined(separator: ", ")
      guard sqlite3_prepare_v2(database, "INSERT INTO \(table) VALUES (\(placeholders))", -1, &insertStatement, nil) == SQLITE_OK else {
        throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database)))")
      }
    }
    let statement = insertStatement
    defer { sqlite3_reset(statement) }
    var index: Int32 = 1
    for value in integers {
      sqlite3_bind_int64(statement, index, Int64(value))
      index += 1
    }
    for value in reals {
      sqlite3_bind_double(statement, index, value)
      index += 1
    }
    guard sqlite3_step(statement) == SQLITE_DONE else {
      throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database)))")
    }
  }

  /// Every row, columns in table order, as (integers, reals) split at `integerCount`.
  public func rows(integerCount: Int) throws -> [(integers: [Int], reals: [Double])] {
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, "SELECT * FROM \(table) ORDER BY seed", -1, &statement, nil) == SQLITE_OK else {
      throw WorkerError("\(path): no table \(table) (\(String(cString: sqlite3_errmsg(database))))")
    }
    defer { sqlite3_finalize(statement) }
    var rows: [(integers: [Int], reals: [Double])] = []
    let count = sqlite3_column_count(statement)
    while true {
      let step = sqlite3_step(statement)
      if step == SQLITE_DONE { break }
      guard step == SQLITE_ROW else { throw WorkerError("\(path): \(String(cString: sqlite3_errmsg(database)))") }
      var integers: [Int] = []
      var reals: [Double] = []
      for column in 0..<count {
        if column < integerCount { integers.append(Int(sqlite3_column_int64(statement, column))) } else {
          reals.append(sqlite3_column_double(statement, column))
        }
      }
      rows.append((integers, reals))
    }
    return rows
  }

  /// The table's column names, in order.
  public func columnNames() throws -> [String] {
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, "SELECT * FROM \(table) LIMIT 0", -1, &statement, nil) == SQLITE_OK else {
      throw WorkerError("\(path): no table \(table)")
    }
    defer { sqlite3_finalize(statement) }
    return (0..<sqlite3_column_count(statement)).map { String(cString: sqlite3_column_name(statement, $0)) }
  }
}
