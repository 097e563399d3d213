import GRDB
import GRDBSQLite
public import Foundation

/// A streaming RFC 4180 CSV reader: records with the line they start on; quoted fields may
/// hold commas, doubled quotes and newlines. Reads the file in 1 MiB chunks, so memory does
/// not grow with the file.
public struct CSVReader {
  let handle: FileHandle
  let path: String
  var chunk: [UInt8] = []
  var position = 0
  var line = 1
  var finished = false

  public init(path: String) throws {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw WorkerError("cannot read \(path)") }
    self.handle = handle
    self.path = path
  }

  mutating func nextByte() -> UInt8? {
    if position == chunk.count {
      if finished { return nil }
      let data = handle.readData(ofLength: 1 << 20)
      if data.isEmpty {
        finished = true
        return nil
      }
      chunk = [UInt8](data)
      position = 0
    }
    defer { position += 1 }
    return chunk[position]
  }

  /// The next record and its first line, or nil at the end of the file.
  public mutating func next() throws -> (fields: [String], line: Int)? {
    var fields: [String] = []
    var field: [UInt8] = []
    var inQuotes = false
    var sawAnything = false
    let startLine = line
    while true {
      guard let byte = nextByte() else {
        if inQuotes { throw WorkerError("\(path):\(startLine): a quoted field is never closed (truncated file?)") }
        if !sawAnything { return nil }
        fields.append(String(decoding: field, as: UTF8.self))
        return (fields, startLine)
      }
      sawAnything = true
      if inQuotes {
        if byte == UInt8(ascii: "\"") {
          if let following = nextByte() {
            if following == UInt8(ascii: "\"") {
              field.append(following)
              continue
            }
            inQuotes = false
            position -= 1  // look at `following` again outside the quotes
          } else {
            inQuotes = false
          }
        } else {
          if byte == UInt8(ascii: "\n") { line += 1 }
          field.append(byte)
        }
        continue
      }
      switch byte {
      case UInt8(ascii: "\""):
        inQuotes = true
      case UInt8(ascii: ","):
        fields.append(String(decoding: field, as: UTF8.self))
        field.removeAll(keepingCapacity: true)
      case UInt8(ascii: "\r"):
        continue
      case UInt8(ascii: "\n"):
        line += 1
        fields.append(String(decoding: field, as: UTF8.self))
        return (fields, startLine)
      default:
        field.append(byte)
      }
    }
  }
}

/// CSV for convert, without a String per field: records are parsed in place in a buffer
/// that holds whole records (refilled 4 MiB at a time, grown for a longer record), each
/// field a byte range in it. The same RFC 4180 reading as `CSVReader`: quotes anywhere
/// start a quoted part, doubled quotes inside are one quote, newlines inside are kept, a
/// carriage return outside quotes is dropped. The file's SHA-256 is taken as it is read.
/// One thread at a time uses it (convert reads the header, then hands it to its reading
/// thread for good), hence `@unchecked Sendable`.
///
/// Why not a kept CSV library (issue #14): both that resolve here were measured on the
/// 1,000,000-row, 5-column CSV of `scripts/bench-workers` (2026-12-02, release build, CPU
/// seconds from GNU time on the shared 2-core machine), parsing only and testing each
/// field for a number: yaslab/CSV.swift 2.5.2 (streaming, `CSVReader(stream:)`) 5.21 s,
/// swiftcsv/SwiftCSV 0.10.0 (no streaming reader: it loads the whole file, 410 MiB peak)
/// 9.72 s, against 4.96 s for Python's whole csv + sqlite3 load. Both build a `String`
/// per field; the parse alone is slower than Python's entire conversion, so neither can
/// keep convert at 3x Python (the target, met by this reader: docs/benchmarks.md).
final class CSVRecords: @unchecked Sendable {
  let file: Int32
  let path: String
  var buffer: UnsafeMutableRawBufferPointer
  /// Unparsed bytes are buffer[start..<end].
  var start = 0
  var end = 0
  var atEnd = false
  var nextLine = 1
  /// The current record: its first line, and its fields as ranges into the buffer.
  var line = 1
  var bounds: [Range<Int>] = []
  var hash = SHA256()
  var bytesRead = 0

  init(path: String) throws {
    file = open(path, O_RDONLY | O_CLOEXEC)
    guard file >= 0 else { throw WorkerError("cannot read \(path)") }
    self.path = path
    buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 16)
  }

  deinit {
    if !atEnd { close(file) }
    buffer.deallocate()
  }

  var count: Int { bounds.count }
  func field(_ index: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[bounds[index]]) }

  /// Moves the unparsed tail to the front (growing the buffer when one record fills it)
  /// and reads more; false at the end of the file.
  func refill() throws -> Bool {
    if atEnd { return false }
    let pending = end - start
    if pending == buffer.count {
      let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
      larger.copyMemory(from: UnsafeRawBufferPointer(buffer))
      buffer.deallocate()
      buffer = larger
    } else if start > 0 {
      memmove(buffer.baseAddress!, buffer.baseAddress! + start, pending)
    }
    start = 0
    end = pending
    let count = read(file, buffer.baseAddress! + end, buffer.count - end)
    guard count >= 0 else { throw WorkerError("cannot read \(path): \(String(cString: strerror(errno)))") }
    if count == 0 {
      atEnd = true
      close(file)
      return false
    }
    hash.update(UnsafeRawBufferPointer(rebasing: buffer[end..<(end + count)]))
    bytesRead += count
    end += count
    return true
  }

  /// The next record into `line` and the fields; false at the end of the file. One pass:
  /// fields are unquoted in place (the output never outruns the input); reaching the end
  /// of the buffer mid-record refills it and shifts the positions taken so far.
  func next() throws -> Bool {
    line = nextLine
    var fields = bounds
    bounds = []
    fields.removeAll(keepingCapacity: true)
    defer { bounds = fields }
    var bytes = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
    var read = start
    var write = start
    var fieldStart = start
    var quoted = false
    /// More bytes after `read`; false at the end of the file.
    func more() throws -> Bool {
      let shift = start
      guard try refill() else { return false }
      read -= shift
      write -= shift
      fieldStart -= shift
      for index in fields.indices { fields[index] = (fields[index].lowerBound - shift)..<(fields[index].upperBound - shift) }
      bytes = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
      return true
    }
    while true {
      if read == end, try !more() {
        if read == start && fields.isEmpty { return false }
        if quoted { throw WorkerError("\(path):\(line): a quoted field is never closed (truncated file?)") }
        fields.append(fieldStart..<write)
        start = end
        nextLine += 1
        return true
      }
      let byte = bytes[read]
      read += 1
      if quoted {
        if byte == UInt8(ascii: "\"") {
          if read == end { _ = try more() }
          if read < end && bytes[read] == UInt8(ascii: "\"") {
            bytes[write] = byte
            write += 1
            read += 1
          } else {
            quoted = false
          }
        } else {
          if byte == UInt8(ascii: "\n") { nextLine += 1 }
          bytes[write] = byte
          write += 1
        }
        continue
      }
      switch byte {
      case UInt8(ascii: ","):
        fields.append(fieldStart..<write)
        fieldStart = write
      case UInt8(ascii: "\n"):
        fields.append(fieldStart..<write)
        start = read
        nextLine += 1
        return true
      case UInt8(ascii: "\""): quoted = true
      case UInt8(ascii: "\r"): continue
      default:
        bytes[write] = byte
        write += 1
      }
    }
  }
}

/// convert: a raw table (CSV, or JSON Lines) to SQLite in DATA_DERIV/<item>/, with a
/// metadata.yaml that carries the source, the schema, the row count and checksums forward.
/// Everything is written under a temporary name and renamed into place at the end.
public struct Converter {
  public enum Format: String, Sendable { case csv, jsonl }

  public struct Summary: Sendable, Equatable {
    public var rows: Int
    public var columns: [(name: String, type: String)]
    public var directory: String
    /// The input's SHA-256, as metadata.yaml and the up-to-date record hold it.
    public var sha256: String
    public static func == (a: Summary, b: Summary) -> Bool {
      a.rows == b.rows && a.directory == b.directory && a.columns.map { "\($0.name):\($0.type)" } == b.columns.map { "\($0.name):\($0.type)" }
    }
  }

  public var input: String
  public var item: String
  public var outputRoot: String
  public var format: Format
  /// Convert even when the item's record says it was made from this very input.
  public var force = false
  public var log: (String) -> Void

  public init(input: String, item: String, outputRoot: String, format: Format? = nil, log: @escaping (String) -> Void) {
    self.input = input
    self.item = item
    self.outputRoot = outputRoot
    self.format = format ?? (input.hasSuffix(".jsonl") || input.hasSuffix(".ndjson") ? .jsonl : .csv)
    self.log = log
  }

  /// The narrowest SQLite type that holds every value seen so far.
  enum ColumnType: Int { case integer, real, text
    var name: String { ["INTEGER", "REAL", "TEXT"][rawValue] }
  }

  enum Value {
    case null, integer(Int64), real(Double), text(String)
  }

  /// Rows inferred from before the table is written: a column that is text in all of
  /// them is bound as text from then on, without trying to read numbers in it.
  static let sampleRows = 1000
  /// Rows per transaction.
  static let batchRows = 100_000

  /// nil when the item was already converted from this input (same bytes, item, format):
  /// it logs `up to date: ...` and touches nothing; the item's later stages then skip too.
  public func runUnlessUpToDate() throws -> Summary? {
    let table = "\(outputRoot)/\(item)/data.sqlite"
    // Hashing the input first costs a read of it, so only when there is a record to match.
    if !force, FileManager.default.fileExists(atPath: UpToDate.recordPath(for: table)),
      UpToDate.isCurrent(recipe(sha256: try UpToDate.sha256(ofFile: input)), outputs: [table, "\(outputRoot)/\(item)/metadata.yaml"])
    {
      log("up to date: convert \(item) (\(table) is from this \(input); --force converts again)")
      return nil
    }
    return try run()
  }

  func recipe(sha256: String) -> Recipe {
    Recipe(task: "convert", inputs: ["input": sha256], parameters: ["item": item, "format": format.rawValue])
  }

  public func run() throws -> Summary {
    guard !item.isEmpty, item.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
      throw WorkerError("--item '\(item)' must be letters, digits, -, _ or .")
    }
    let final = "\(outputRoot)/\(item)"
    let temporary = "\(outputRoot)/.\(item).tmp-\(getpid())"
    try? FileManager.default.removeItem(atPath: temporary)
    try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
    do {
      let summary = try convert(into: temporary)
      // The record goes in with the table, in the one rename: the item directory either
      // holds both or is the old one.
      try UpToDate.record(recipe(sha256: summary.sha256), for: "\(temporary)/data.sqlite")
      try? FileManager.default.removeItem(atPath: final)
      guard rename(temporary, final) == 0 else { throw WorkerError("cannot move the result into \(final)") }
      return Summary(rows: summary.rows, columns: summary.columns, directory: final, sha256: summary.sha256)
    } catch {
      try? FileManager.default.removeItem(atPath: temporary)
      throw error
    }
  }

  /// Rows gathered for the table, numbers as they are and text copied into an arena, with
  /// the narrowest type per column so far. Filled by the reading side, inserted by the
  /// SQLite side (`Table.insert`), then reused.
  final class Rows {
    let columns: Int
    let capacity: Int
    /// The narrowest type so far, per column: shared by all of a load's batches, written
    /// by the reading side only.
    let types: UnsafeMutablePointer<ColumnType>
    /// Per value a kind (0 null, 1 integer, 2 real, 3 text), the number's bits or the
    /// text's offset in the arena, and the text's length.
    let kinds: UnsafeMutablePointer<UInt8>
    let values: UnsafeMutablePointer<Int64>
    let lengths: UnsafeMutablePointer<Int>
    var arena: UnsafeMutableRawBufferPointer
    var arenaUsed = 0
    var count = 0
    var firstLine = 0
    var lastLine = 0
    /// The file's last rows (or the read failed after them).
    var isLast = false

    init(columns: Int, capacity: Int, types: UnsafeMutablePointer<ColumnType>) {
      self.columns = columns
      self.capacity = capacity
      self.types = types
      kinds = .allocate(capacity: capacity * columns)
      values = .allocate(capacity: capacity * columns)
      lengths = .allocate(capacity: capacity * columns)
      arena = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    deinit {
      kinds.deallocate()
      values.deallocate()
      lengths.deallocate()
      arena.deallocate()
    }

    var isFull: Bool { count == capacity }

    func reset() {
      count = 0
      arenaUsed = 0
      isLast = false
    }

    func setNull(_ column: Int) { kinds[count * columns + column] = 0 }

    func set(_ column: Int, integer: Int64) {
      let index = count * columns + column
      kinds[index] = 1
      values[index] = integer
    }

    func set(_ column: Int, real: Double) {
      let index = count * columns + column
      kinds[index] = 2
      values[index] = Int64(bitPattern: real.bitPattern)
      if types[column] == .integer { types[column] = .real }
    }

    func set(_ column: Int, text: UnsafeRawBufferPointer) {
      if arenaUsed + text.count > arena.count {
        let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: max(arena.count * 2, arenaUsed + text.count), alignment: 16)
        larger.copyMemory(from: UnsafeRawBufferPointer(rebasing: arena[0..<arenaUsed]))
        arena.deallocate()
        arena = larger
      }
      UnsafeMutableRawBufferPointer(rebasing: arena[arenaUsed..<(arenaUsed + text.count)]).copyMemory(from: text)
      let index = count * columns + column
      kinds[index] = 3
      values[index] = Int64(arenaUsed)
      lengths[index] = text.count
      arenaUsed += text.count
      types[column] = .text
    }

    func set(_ column: Int, _ value: Value) {
      switch value {
      case .null: setNull(column)
      case .integer(let number): set(column, integer: number)
      case .real(let number): set(column, real: number)
      case .text(let text):
        var text = text
        text.withUTF8 { set(column, text: UnsafeRawBufferPointer($0)) }
      }
    }

    /// The row's values are all set.
    func endRow(line: Int) {
      if count == 0 { firstLine = line }
      lastLine = line
      count += 1
    }
  }

  /// The table being written: rows go in `rowsPerStatement` at a time through one prepared
  /// multi-row INSERT, bound through SQLite's C interface on GRDB's statement handle
  /// (SQLite's cost per statement step, not per value, was most of a row's time), and
  /// are committed every `batchRows`.
  final class Table {
    let database: Database
    let input: String
    let columns: Int
    let rowsPerStatement: Int
    let many: Statement
    let log: (String) -> Void
    let types: UnsafeMutablePointer<ColumnType>
    var rows = 0
    var sinceCommit = 0
    let started = Date()
    /// Progress at most every 2 s, as download's: a line per batch was 15 a second.
    var lastReport = Date()

    init(_ database: Database, header names: [String], input: String, log: @escaping (String) -> Void) throws {
      var seen = Set<String>()
      for name in names {
        guard !name.isEmpty else { throw WorkerError("\(input):1: a column has no name") }
        guard seen.insert(name).inserted else { throw WorkerError("\(input):1: column '\(name)' appears twice") }
      }
      self.database = database
      self.input = input
      self.log = log
      columns = names.count
      let variables = Int(sqlite3_limit(database.sqliteConnection, SQLITE_LIMIT_VARIABLE_NUMBER, -1))
      rowsPerStatement = max(1, min(64, variables / max(1, names.count)))
      let list = names.map { "\"\($0.replacingOccurrences(of: "\"", with: "\"\""))\"" }.joined(separator: ", ")
      try database.execute(sql: "CREATE TABLE records (\(list))")
      many = try database.makeStatement(sql: Table.insert(rows: rowsPerStatement, columns: columns))
      types = .allocate(capacity: columns)
      types.initialize(repeating: .integer, count: columns)
      try database.beginTransaction()
    }

    deinit { types.deallocate() }

    static func insert(rows: Int, columns: Int) -> String {
      let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
      return "INSERT INTO records VALUES " + Array(repeating: row, count: rows).joined(separator: ", ")
    }

    var columnTypes: [ColumnType] { Array(UnsafeBufferPointer(start: types, count: columns)) }

    /// A batch for this table, of a whole number of statements.
    func makeRows() -> Rows { Rows(columns: columns, capacity: rowsPerStatement * 64, types: types) }

    /// A batch's rows, a statement at a time; a last part shorter than a statement gets a
    /// statement of its own size (the file's end only: batches are whole statements).
    func insert(_ batch: Rows) throws {
      var first = 0
      while first < batch.count {
        let count = min(rowsPerStatement, batch.count - first)
        let statement = count == rowsPerStatement ? many : try database.makeStatement(sql: Table.insert(rows: count, columns: columns))
        try step(statement, batch, rows: first..<(first + count))
        first += count
      }
      rows += batch.count
      sinceCommit += batch.count
      if sinceCommit >= Converter.batchRows {
        try database.commit()
        try database.beginTransaction()
        sinceCommit = 0
        if Date().timeIntervalSince(lastReport) >= 2 {
          lastReport = Date()
          log(String(format: "convert: %d rows, %.0f rows/s", rows, Double(rows) / max(Date().timeIntervalSince(started), 1e-6)))
        }
      }
    }

    /// Text is bound SQLITE_STATIC: the batch is not touched until the step is done.
    func step(_ statement: Statement, _ batch: Rows, rows: Range<Int>) throws {
      let handle = statement.sqliteStatement
      var parameter: Int32 = 1
      for index in (rows.lowerBound * columns)..<(rows.upperBound * columns) {
        switch batch.kinds[index] {
        case 1: sqlite3_bind_int64(handle, parameter, batch.values[index])
        case 2: sqlite3_bind_double(handle, parameter, Double(bitPattern: UInt64(bitPattern: batch.values[index])))
        case 3:
          let text = (batch.arena.baseAddress! + Int(batch.values[index])).assumingMemoryBound(to: CChar.self)
          sqlite3_bind_text(handle, parameter, text, Int32(batch.lengths[index]), nil)
        default: sqlite3_bind_null(handle, parameter)
        }
        parameter += 1
      }
      let status = sqlite3_step(handle)
      sqlite3_reset(handle)
      guard status == SQLITE_DONE else {
        throw WorkerError("\(input):\(batch.firstLine)-\(batch.lastLine): SQLite: \(String(cString: sqlite3_errmsg(database.sqliteConnection)))")
      }
    }

    func finish() throws { try database.commit() }
  }

  /// Two batches in flight between the reading thread and the SQLite one, so parsing the
  /// CSV (about half of the work) runs on the second core. Shared state is guarded by
  /// `lock`, hand-overs by the two semaphores; hence `@unchecked Sendable`.
  final class Handover: @unchecked Sendable {
    let lock = NSLock()
    let filled = DispatchSemaphore(value: 0)
    let emptied = DispatchSemaphore(value: 0)
    var ready: [Rows] = []
    var spare: [Rows] = []
    var failure: (any Error)?
    var cancelled = false

    init(_ batches: [Rows]) {
      spare = batches
      for _ in batches { emptied.signal() }
    }

    /// Reading side: an empty batch, or nil once the SQLite side has given up.
    func takeSpare() -> Rows? {
      emptied.wait()
      return lock.withLock { cancelled ? nil : spare.popLast() }
    }

    func hand(_ batch: Rows?, failure: (any Error)? = nil) {
      lock.withLock {
        if let batch { ready.append(batch) }
        if let failure { self.failure = failure }
      }
      filled.signal()
    }

    /// SQLite side: the next filled batch, or the reading side's error.
    func takeReady() throws -> Rows {
      filled.wait()
      return try lock.withLock {
        if !ready.isEmpty { return ready.removeFirst() }
        throw failure ?? WorkerError("convert: the reading thread ended without a result")
      }
    }

    func giveBack(_ batch: Rows) {
      lock.withLock { spare.append(batch) }
      emptied.signal()
    }

    func cancel() {
      lock.withLock { cancelled = true }
      emptied.signal()
    }
  }

  func convert(into directory: String) throws -> Summary {
    // A bulk load into a file nobody else has open, renamed into place only when complete:
    // no journal, no fsync, one lock, a large page cache.
    var configuration = Configuration()
    configuration.prepareDatabase { db in
      try db.execute(sql: "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE; PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY")
    }
    let queue: DatabaseQueue
    do {
      queue = try DatabaseQueue(path: "\(directory)/data.sqlite", configuration: configuration)
    } catch {
      throw WorkerError("cannot create \(directory)/data.sqlite: \(error)")
    }
    var header: [String] = []
    var rows = 0
    var types: [ColumnType] = []
    var bytes = 0
    var sha256 = ""
    try queue.writeWithoutTransaction { database in
      do {
        let table: Table
        switch format {
        case .csv:
          let reader = try CSVRecords(path: input)
          guard try reader.next() else { throw WorkerError("\(input):1: the file is empty (a header row is needed)") }
          header = (0..<reader.count).map { String(decoding: reader.field($0), as: UTF8.self) }
          table = try Table(database, header: header, input: input, log: log)
          try load(reader, into: table)
          (bytes, sha256) = (reader.bytesRead, reader.hash.finalize())
        case .jsonl:
          table = try loadJSONLines(database, header: &header)
          (bytes, sha256) = try Converter.checksum(input)
        }
        (rows, types) = (table.rows, table.columnTypes)
      } catch {
        // GRDB refuses to end an access with a transaction open; the file is discarded.
        if database.isInsideTransaction { try? database.rollback() }
        if let error = error as? DatabaseError { throw WorkerError("\(input): SQLite: \(error.message ?? "\(error)")") }
        throw error
      }
    }
    try queue.close()
    let columns = zip(header, types).map { (name: $0, type: $1.name) }
    let metadata = Converter.metadata(item: item, input: input, format: format, bytes: bytes, sha256: sha256, rows: rows, columns: columns)
    try Data(metadata.utf8).write(to: URL(fileURLWithPath: "\(directory)/metadata.yaml"))
    log("convert: \(item): \(rows) rows, \(columns.count) columns from \(input)")
    return Summary(rows: rows, columns: columns, directory: directory, sha256: sha256)
  }

  /// CSV records into the table: read and parsed on a thread of their own, inserted on
  /// this one. Numbers are read straight from the bytes: an integer (`Int64(_:)`'s form),
  /// else a finite double (`Double(_:)`'s), else text.
  func load(_ reader: CSVRecords, into table: Table) throws {
    let handover = Handover([table.makeRows(), table.makeRows()])
    let columns = table.columns
    let input = self.input
    let reading = Thread {
      var textOnly = [Bool](repeating: false, count: columns)
      var sawNumber = [Bool](repeating: false, count: columns)
      var sampled = 0
      var batch: Rows?
      do {
        while true {
          guard let rows = handover.takeSpare() else { return }
          rows.reset()
          batch = rows
          while !rows.isFull, try reader.next() {
            if reader.count == 1 && reader.field(0).isEmpty { continue }  // a blank line
            guard reader.count == columns else {
              throw WorkerError("\(input):\(reader.line): expected \(columns) fields, found \(reader.count)")
            }
            for column in 0..<columns {
              let field = reader.field(column)
              if field.isEmpty {
                rows.setNull(column)
              } else if textOnly[column] {
                rows.set(column, text: field)
              } else {
                switch Converter.number(field) {
                case .integer(let integer):
                  rows.set(column, integer: integer)
                  sawNumber[column] = true
                case .real(let real):
                  rows.set(column, real: real)
                  sawNumber[column] = true
                default:
                  rows.set(column, text: field)
                }
              }
            }
            rows.endRow(line: reader.line)
            sampled += 1
            if sampled == Converter.sampleRows {
              for column in 0..<columns where rows.types[column] == .text && !sawNumber[column] { textOnly[column] = true }
            }
          }
          rows.isLast = !rows.isFull
          batch = nil
          handover.hand(rows)
          if rows.isLast { return }
        }
      } catch {
        // The rows read before the error are inserted first, then the error is thrown.
        if let batch { handover.hand(batch) }
        handover.hand(nil, failure: error)
      }
    }
    reading.start()
    do {
      while true {
        let batch = try handover.takeReady()
        try table.insert(batch)
        if batch.isLast { break }
        handover.giveBack(batch)
      }
      try table.finish()
    } catch {
      handover.cancel()
      throw error
    }
  }

  /// A field as a number: an integer in `Int64(_: String)`'s form (optional sign, digits),
  /// else a finite double as `Double(_: String)` reads it (strtod over the whole field), else
  /// `.null` (not a number). Plain decimals with at most 15 digits (`-12.375`) skip strtod:
  /// digits / 10^k is then one correctly rounded division of two exact doubles, which is
  /// strtod's answer (Clinger's fast path).
  static func number(_ bytes: UnsafeRawBufferPointer) -> Value {
    var index = 0
    var negative = false
    if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
      negative = bytes[0] == UInt8(ascii: "-")
      index = 1
    }
    var mantissa: Int64 = 0
    var digits = 0
    var fraction = -1
    var plain = index < bytes.count
    while index < bytes.count {
      let byte = bytes[index]
      index += 1
      if byte == UInt8(ascii: ".") && fraction < 0 {
        fraction = 0
        continue
      }
      let digit = byte &- UInt8(ascii: "0")
      guard digit < 10, digits < 18 else {
        plain = false
        break
      }
      mantissa = mantissa * 10 + Int64(digit)
      digits += 1
      if fraction >= 0 { fraction += 1 }
    }
    if plain && digits > 0 {
      if fraction < 0 { return .integer(negative ? -mantissa : mantissa) }
      if fraction > 0 && digits <= 15 {
        let value = Double(mantissa) / Converter.powersOfTen[fraction]
        return .real(negative ? -value : value)
      }
    }
    return general(bytes)
  }

  static let powersOfTen: [Double] = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15]

  /// The rest of `number(_:)`: long integers, exponents, hexadecimal, `5.`, not numbers.
  static func general(_ bytes: UnsafeRawBufferPointer) -> Value {
    let text = String(decoding: bytes, as: UTF8.self)
    if let integer = Int64(text) { return .integer(integer) }
    if let real = Double(text), real.isFinite { return .real(real) }
    return .null
  }

  func loadJSONLines(_ database: Database, header: inout [String]) throws -> Table {
    guard let handle = FileHandle(forReadingAtPath: input) else { throw WorkerError("cannot read \(input)") }
    var table: Table?
    var batch: Rows?
    var pending = Data()
    var lineNumber = 0
    func handleLine(_ bytes: Data) throws {
      lineNumber += 1
      guard !bytes.allSatisfy({ $0 == 32 || $0 == 13 }) else { return }
      guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
        throw WorkerError("\(input):\(lineNumber): not a JSON object")
      }
      if table == nil {
        header = object.keys.sorted()
        table = try Table(database, header: header, input: input, log: log)
        batch = table!.makeRows()
      }
      guard Set(object.keys) == Set(header) else {
        throw WorkerError("\(input):\(lineNumber): keys \(object.keys.sorted()) differ from the first line's \(header)")
      }
      for (column, key) in header.enumerated() {
        switch object[key] {
        case is NSNull, nil: batch!.set(column, .null)
        case let number as NSNumber:
          let double = number.doubleValue
          if double.rounded() == double, abs(double) < 9e15, !"\(number)".contains(".") {
            batch!.set(column, .integer(number.int64Value))
          } else {
            batch!.set(column, .real(double))
          }
        case let text as String: batch!.set(column, .text(text))
        default: throw WorkerError("\(input):\(lineNumber): '\(key)' is not a number, string or null")
        }
      }
      batch!.endRow(line: lineNumber)
      if batch!.isFull {
        try table!.insert(batch!)
        batch!.reset()
      }
    }
    while true {
      let data = handle.readData(ofLength: 1 << 20)
      if data.isEmpty { break }
      pending.append(data)
      while let newline = pending.firstIndex(of: 10) {
        try handleLine(pending[pending.startIndex..<newline])
        pending = pending[(newline + 1)...]
      }
    }
    if !pending.isEmpty { try handleLine(pending) }
    guard let table, let batch else { throw WorkerError("\(input):1: the file has no records") }
    try table.insert(batch)
    try table.finish()
    return table
  }

  /// The size and SHA-256 of a file, read in 1 MiB pieces.
  static func checksum(_ path: String) throws -> (Int, String) {
    guard let source = FileHandle(forReadingAtPath: path) else { throw WorkerError("cannot read \(path)") }
    var hash = SHA256()
    var bytes = 0
    while true {
      let data = source.readData(ofLength: 1 << 20)
      if data.isEmpty { break }
      bytes += data.count
      hash.update(data)
    }
    return (bytes, hash.finalize())
  }

  static func metadata(item: String, input: String, format: Format, bytes: Int, sha256: String, rows: Int,
                       columns: [(name: String, type: String)]) -> String {
    func quoted(_ text: String) -> String {
      "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
    var lines = [
      "# Written by ci-worker convert.",
      "item: \(quoted(item))",
      "source:",
      "  path: \(quoted(input))",
      "  format: \(format.rawValue)",
      "  bytes: \(bytes)",
      "  sha256: \(sha256)",
      "table: records",
      "rows: \(rows)",
      "columns:",
    ]
    for column in columns { lines.append("  - {name: \(quoted(column.name)), type: \(column.type)}") }
    return lines.joined(separator: "\n") + "\n"
  }
}
