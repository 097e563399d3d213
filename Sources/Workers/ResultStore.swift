import GRDB
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
  let queue: DatabaseQueue
  public let path: String
  public let table: String
  public let columns: [String]

  /// `columns` after the key column `seed`; all REAL except the leading INTEGER ones.
  public init(path: String, table: String, integerColumns: [String], realColumns: [String]) throws {
    var configuration = Configuration()
    configuration.busyMode = .timeout(30)
    // svd-map's batches span many accesses (begin, a second of inserts, commit); GRDB
    // otherwise stops a process that ends an access inside a transaction.
    configuration.allowsUnsafeTransactions = true
    self.path = path
    self.table = table
    columns = integerColumns + realColumns
    let definitions = integerColumns.map { "\($0) INTEGER NOT NULL" } + realColumns.map { "\($0) REAL NOT NULL" }
    queue = try Self.opening(path) { try DatabaseQueue(path: path, configuration: configuration) }
    try access { try $0.execute(sql: "CREATE TABLE IF NOT EXISTS \(table) (\(definitions.joined(separator: ", ")), PRIMARY KEY (seed))") }
  }

  /// Opens an existing file read-only (for reduce).
  public init(readingFrom path: String, table: String) throws {
    var configuration = Configuration()
    configuration.readonly = true
    // Other array tasks write their shards meanwhile (svd-map looks into them for seeds
    // already stored): wait for their commit rather than fail with "database is locked".
    configuration.busyMode = .timeout(30)
    self.path = path
    self.table = table
    columns = []
    queue = try Self.opening(path) { try DatabaseQueue(path: path, configuration: configuration) }
  }

  static func opening(_ path: String, _ open: () throws -> DatabaseQueue) throws -> DatabaseQueue {
    do { return try open() } catch { throw WorkerError("cannot open \(path) as SQLite (\(WorkerError.oneLine(error)))") }
  }

  /// One connection, used outside GRDB's own transactions: the batches below are the
  /// caller's (`begin`/`commit`). SQLite's errors become one line naming the file.
  func access<T>(_ body: (Database) throws -> T) throws -> T {
    do {
      return try queue.inDatabase(body)
    } catch let error as DatabaseError {
      throw WorkerError("\(path): \(error.message ?? "\(error.resultCode)")")
    }
  }

  public func storedSeeds() throws -> Set<Int> {
    try access { try Set(Int.fetchCursor($0, sql: "SELECT seed FROM \(table)")) }
  }

  /// Rows go in batches, each one transaction (`begin`, inserts, `commit`): a killed task
  /// leaves only whole batches, and a seed's row and the Gram sum that counts it are in
  /// the same one. One fsync'd commit per seed cost more than the seed's vector.
  public func begin() throws { try access { try $0.execute(sql: "BEGIN IMMEDIATE") } }
  public func commit() throws { try access { try $0.execute(sql: "COMMIT") } }
  public func rollback() { try? access { try $0.execute(sql: "ROLLBACK") } }

  /// The shard's running Gram sum (one row), inside the caller's transaction.
  public func storeGram(table: String, seeds: Int, matrix: [Double]) throws {
    try access { db in
      try db.execute(sql: "CREATE TABLE IF NOT EXISTS \(table) (id INTEGER PRIMARY KEY CHECK (id = 0), seeds INTEGER NOT NULL, matrix BLOB NOT NULL)")
      let blob = matrix.withUnsafeBytes { Data($0) }
      try db.execute(sql: "INSERT OR REPLACE INTO \(table) VALUES (0, ?, ?)", arguments: [seeds, blob])
    }
  }

  /// The stored Gram sum and how many seeds it covers, or nil when the shard has none.
  public func gram(table: String, n: Int) throws -> (seeds: Int, matrix: [Double])? {
    let stored = try access { db -> (Int, Data)? in
      guard try db.tableExists(table), let row = try Row.fetchOne(db, sql: "SELECT seeds, matrix FROM \(table) WHERE id = 0") else {
        return nil
      }
      return (row[0], row[1] ?? Data())
    }
    guard let (seeds, blob) = stored else { return nil }
    guard blob.count == n * n * MemoryLayout<Double>.size else {
      throw WorkerError("\(path): the Gram matrix holds \(blob.count) bytes, not \(n)x\(n) doubles (corrupt shard?)")
    }
    var matrix = [Double](repeating: 0, count: n * n)
    matrix.withUnsafeMutableBytes { _ = blob.copyBytes(to: $0) }
    return (seeds, matrix)
  }

  /// One row; the INSERT (a thousand placeholders) is prepared once per connection.
  public func insert(integers: [Int], reals: [Double]) throws {
    try access { db in
      let placeholders = Array(repeating: "?", count: integers.count + reals.count).joined(separator: ", ")
      let statement = try db.cachedStatement(sql: "INSERT INTO \(table) VALUES (\(placeholders))")
      try statement.execute(arguments: StatementArguments(integers.map { $0.databaseValue } + reals.map { $0.databaseValue }))
    }
  }

  /// Every row, columns in table order, as (integers, reals) split at `integerCount`.
  public func rows(integerCount: Int) throws -> [(integers: [Int], reals: [Double])] {
    try access { db in
      guard try db.tableExists(table) else { throw WorkerError("\(path): no table \(table)") }
      let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM \(table) ORDER BY seed")
      var rows: [(integers: [Int], reals: [Double])] = []
      while let row = try cursor.next() {
        // Optional reads: a NULL or text where a number belongs is an error, not a trap.
        let integers = (0..<integerCount).compactMap { row[$0] as Int? }
        let reals = (integerCount..<row.count).compactMap { row[$0] as Double? }
        guard integers.count + reals.count == row.count else { throw WorkerError("\(path): a row of \(table) holds a non-number") }
        rows.append((integers, reals))
      }
      return rows
    }
  }

  /// The table's column names, in order.
  public func columnNames() throws -> [String] {
    try access { db in
      guard try db.tableExists(table) else { throw WorkerError("\(path): no table \(table)") }
      return try db.columns(in: table).map(\.name)
    }
  }
}
