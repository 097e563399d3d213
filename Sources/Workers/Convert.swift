import CSQLite
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

/// convert: a raw table (CSV, or JSON Lines) to SQLite in DATA_DERIV/<item>/, with a
/// metadata.yaml that carries the source, the schema, the row count and checksums forward.
/// Everything is written under a temporary name and renamed into place at the end.
public struct Converter {
  public enum Format: String, Sendable { case csv, jsonl }

  public struct Summary: Sendable, Equatable {
    public var rows: Int
    public var columns: [(name: String, type: String)]
    public var directory: String
    public static func == (a: Summary, b: Summary) -> Bool {
      a.rows == b.rows && a.directory == b.directory && a.columns.map { "\($0.name):\($0.type)" } == b.columns.map { "\($0.name):\($0.type)" }
    }
  }

  public var input: String
  public var item: String
  public var outputRoot: String
  public var format: Format
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

  static func value(_ text: String) -> Value {
    if text.isEmpty { return .null }
    if let integer = Int64(text) { return .integer(integer) }
    if let real = Double(text), real.isFinite { return .real(real) }
    return .text(text)
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
      try? FileManager.default.removeItem(atPath: final)
      guard rename(temporary, final) == 0 else { throw WorkerError("cannot move the result into \(final)") }
      return Summary(rows: summary.rows, columns: summary.columns, directory: final)
    } catch {
      try? FileManager.default.removeItem(atPath: temporary)
      throw error
    }
  }

  func convert(into directory: String) throws -> Summary {
    var database: OpaquePointer?
    guard sqlite3_open("\(directory)/data.sqlite", &database) == SQLITE_OK, let database else {
      throw WorkerError("cannot create \(directory)/data.sqlite")
    }
    defer { sqlite3_close(database) }
    func exec(_ sql: String) throws {
      guard sqlite3_exec(database, sql, nil, nil, nil) == SQLITE_OK else {
        throw WorkerError("SQLite: \(String(cString: sqlite3_errmsg(database)))")
      }
    }
    var header: [String] = []
    var types: [ColumnType] = []
    var statement: OpaquePointer?
    defer { sqlite3_finalize(statement) }
    var rows = 0
    let started = Date()

    func prepare(_ names: [String]) throws {
      var seen = Set<String>()
      for name in names {
        guard !name.isEmpty else { throw WorkerError("\(input):1: a column has no name") }
        guard seen.insert(name).inserted else { throw WorkerError("\(input):1: column '\(name)' appears twice") }
      }
      header = names
      types = Array(repeating: .integer, count: names.count)
      let columns = names.map { "\"\($0.replacingOccurrences(of: "\"", with: "\"\""))\"" }.joined(separator: ", ")
      try exec("CREATE TABLE records (\(columns))")
      let marks = Array(repeating: "?", count: names.count).joined(separator: ", ")
      guard sqlite3_prepare_v2(database, "INSERT INTO records VALUES (\(marks))", -1, &statement, nil) == SQLITE_OK else {
        throw WorkerError("SQLite: \(String(cString: sqlite3_errmsg(database)))")
      }
      try exec("BEGIN")
    }

    func insert(_ values: [Value], line: Int) throws {
      for (index, value) in values.enumerated() {
        let column = Int32(index + 1)
        switch value {
        case .null: sqlite3_bind_null(statement, column)
        case .integer(let number): sqlite3_bind_int64(statement, column, number)
        case .real(let number):
          sqlite3_bind_double(statement, column, number)
          if types[index] == .integer { types[index] = .real }
        case .text(let text):
          sqlite3_bind_text(statement, column, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
          types[index] = .text
        }
      }
      guard sqlite3_step(statement) == SQLITE_DONE else {
        throw WorkerError("\(input):\(line): SQLite: \(String(cString: sqlite3_errmsg(database)))")
      }
      sqlite3_reset(statement)
      rows += 1
      if rows % 100_000 == 0 {
        try exec("COMMIT")
        try exec("BEGIN")
        log(String(format: "convert: %d rows, %.0f rows/s", rows, Double(rows) / max(Date().timeIntervalSince(started), 1e-6)))
      }
    }

    switch format {
    case .csv:
      var reader = try CSVReader(path: input)
      guard let first = try reader.next() else { throw WorkerError("\(input):1: the file is empty (a header row is needed)") }
      try prepare(first.fields)
      while let record = try reader.next() {
        if record.fields == [""] { continue }  // a blank line
        guard record.fields.count == header.count else {
          throw WorkerError("\(input):\(record.line): expected \(header.count) fields, found \(record.fields.count)")
        }
        try insert(record.fields.map(Converter.value), line: record.line)
      }
    case .jsonl:
      guard let handle = FileHandle(forReadingAtPath: input) else { throw WorkerError("cannot read \(input)") }
      var pending = Data()
      var lineNumber = 0
      func handleLine(_ bytes: Data) throws {
        lineNumber += 1
        guard !bytes.allSatisfy({ $0 == 32 || $0 == 13 }) else { return }
        guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
          throw WorkerError("\(input):\(lineNumber): not a JSON object")
        }
        if header.isEmpty { try prepare(object.keys.sorted()) }
        guard Set(object.keys) == Set(header) else {
          throw WorkerError("\(input):\(lineNumber): keys \(object.keys.sorted()) differ from the first line's \(header)")
        }
        let values: [Value] = try header.map { key in
          switch object[key] {
          case is NSNull, nil: return .null
          case let number as NSNumber:
            let double = number.doubleValue
            if double.rounded() == double, abs(double) < 9e15, !"\(number)".contains(".") { return .integer(number.int64Value) }
            return .real(double)
          case let text as String: return .text(text)
          default: throw WorkerError("\(input):\(lineNumber): '\(key)' is not a number, string or null")
          }
        }
        try insert(values, line: lineNumber)
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
      guard !header.isEmpty else { throw WorkerError("\(input):1: the file has no records") }
    }
    try exec("COMMIT")

    var checksum = SHA256()
    guard let source = FileHandle(forReadingAtPath: input) else { throw WorkerError("cannot read \(input)") }
    var bytes = 0
    while true {
      let data = source.readData(ofLength: 1 << 20)
      if data.isEmpty { break }
      bytes += data.count
      checksum.update(data)
    }
    let columns = zip(header, types).map { (name: $0, type: $1.name) }
    let metadata = Converter.metadata(
      item: item, input: input, format: format, bytes: bytes, sha256: checksum.finalize(), rows: rows, columns: columns)
    try Data(metadata.utf8).write(to: URL(fileURLWithPath: "\(directory)/metadata.yaml"))
    log("convert: \(item): \(rows) rows, \(columns.count) columns from \(input)")
    return Summary(rows: rows, columns: columns, directory: directory)
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
