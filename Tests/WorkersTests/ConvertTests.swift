import GRDB
import Foundation
import TestSizes
import Testing
import Workers

@Suite(.tags(.medium)) struct ConvertTests {
  func write(_ text: String, name: String) throws -> (directory: String, path: String) {
    let directory = try scratch()
    let path = "\(directory)/\(name)"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return (directory, path)
  }

  /// Each row of `sql` as "a|b|c", NULL for a null (SQLite's own text of each value).
  func query(_ database: String, _ sql: String) throws -> [String] {
    var configuration = Configuration()
    configuration.readonly = true
    return try DatabaseQueue(path: database, configuration: configuration).read { db in
      try Row.fetchAll(db, sql: sql).map { row in
        row.databaseValues.map { $0.isNull ? "NULL" : String(describing: $0.storage.value!) }.joined(separator: "|")
      }
    }
  }

  @Test func sha256MatchesTheStandardVectors() {
    var empty = SHA256()
    #expect(empty.finalize() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    var abc = SHA256()
    abc.update(Array("abc".utf8))
    #expect(abc.finalize() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    var long = SHA256()
    long.update(Array(String(repeating: "a", count: 1_000_000).utf8))
    #expect(long.finalize() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  @Test func csvWithQuotesNewlinesAndTypesBecomesSQLiteAndMetadata() throws {
    let csv = "id,name,score,note\n1,\"Smith, Ann\",3.5,\n2,Bjørk,4,\"two\nlines \"\"quoted\"\"\"\n3,Li,x,ok\n"
    let (directory, path) = try write(csv, name: "sub-01.csv")
    let summary = try Converter(input: path, item: "sub-01", outputRoot: "\(directory)/deriv", log: { _ in }).run()
    #expect(summary.rows == 3)
    #expect(summary.columns.map { "\($0.name):\($0.type)" } == ["id:INTEGER", "name:TEXT", "score:TEXT", "note:TEXT"])
    let database = "\(directory)/deriv/sub-01/data.sqlite"
    #expect(try query(database, "SELECT id, name, score, note FROM records ORDER BY id") == [
      "1|Smith, Ann|3.5|NULL", "2|Bjørk|4|two\nlines \"quoted\"", "3|Li|x|ok",
    ])
    let metadata = try String(contentsOfFile: "\(directory)/deriv/sub-01/metadata.yaml", encoding: .utf8)
    var checksum = SHA256()
    checksum.update(Array(csv.utf8))
    #expect(metadata.contains("sha256: \(checksum.finalize())"))
    #expect(metadata.contains("rows: 3"))
    #expect(metadata.contains("- {name: \"score\", type: TEXT}"))
  }

  /// Numbers are read from the bytes without Swift's parsers; every value must come out
  /// as `Int64(_:)`, else `Double(_:)` (finite), else text would have it, bit for bit.
  @Test func numbersAreWhatSwiftsParsersSay() throws {
    var generator = SystemRandomNumberGenerator()
    var values = [
      "007", "+5", "-0", "-0.0", "1e3", "0x1p3", "5.", ".5", "-.5", "12345678901234567890", "9223372036854775807",
      "-9223372036854775808", "1.7976931348623157e308", "1e999", "inf", "nan", " 5", "1.2.3", "-", ".", "+",
      "0.1", "123456789012345.6", "1234567890123456.7", "0.000000000000001", "99999999999999999",
    ]
    for _ in 0..<3000 {
      let digits = String((0..<Int.random(in: 1...18, using: &generator)).map { _ in "0123456789".randomElement(using: &generator)! })
      let point = Int.random(in: 0...digits.count, using: &generator)
      let sign = ["", "-", "+"].randomElement(using: &generator)!
      values.append(sign + digits.prefix(point) + (point < digits.count ? "." : "") + digits.dropFirst(point))
    }
    let (directory, path) = try write("x\n" + values.joined(separator: "\n") + "\n", name: "numbers.csv")
    _ = try Converter(input: path, item: "n", outputRoot: directory, log: { _ in }).run()
    var configuration = Configuration()
    configuration.readonly = true
    let stored = try DatabaseQueue(path: "\(directory)/n/data.sqlite", configuration: configuration).read { db in
      try DatabaseValue.fetchAll(db, sql: "SELECT x FROM records ORDER BY rowid")
    }
    try #require(stored.count == values.count)
    for (value, cell) in zip(values, stored) {
      if let integer = Int64(value) {
        guard case .int64(let stored) = cell.storage else { Issue.record("\(value): \(cell)"); continue }
        #expect(stored == integer, "\(value)")
      } else if let real = Double(value), real.isFinite {
        guard case .double(let stored) = cell.storage else { Issue.record("\(value): \(cell)"); continue }
        #expect(stored.bitPattern == real.bitPattern, "\(value)")
      } else {
        guard case .string(let stored) = cell.storage else { Issue.record("\(value): \(cell)"); continue }
        #expect(stored == value, "\(value)")
      }
    }
  }

  /// Records that cross the 4 MiB read buffer, one longer than it (the buffer grows), CRLF
  /// line ends, and quoted newlines that count in the line numbers of errors.
  @Test func recordsAcrossTheReadBufferAndCRLF() throws {
    var text = "id,body\r\n"
    var bodies: [String] = []
    for id in 0..<3000 {
      let body = id == 1500 ? String(repeating: "y", count: 5 << 20) : "row \(id), \"quoted\"\nsecond line " + String(repeating: "x", count: id % 3000)
      bodies.append(body)
      text += "\(id),\"\(body.replacingOccurrences(of: "\"", with: "\"\""))\"\r\n"
    }
    let (directory, path) = try write(text + "3000\n", name: "long.csv")
    #expect {
      try Converter(input: path, item: "long", outputRoot: directory, log: { _ in }).run()
    } throws: { "\($0)" == "\(path):6001: expected 2 fields, found 1" }  // 2999 two-line records, one of one line
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    let summary = try Converter(input: path, item: "long", outputRoot: directory, log: { _ in }).run()
    #expect(summary.rows == 3000)
    #expect(summary.columns.map { "\($0.name):\($0.type)" } == ["id:INTEGER", "body:TEXT"])
    let stored = try query("\(directory)/long/data.sqlite", "SELECT body FROM records ORDER BY id")
    #expect(stored.count == 3000)
    #expect(stored == bodies)
  }

  @Test func jsonLinesToo() throws {
    let (directory, path) = try write("{\"t\": 1, \"v\": 0.5}\n{\"t\": 2, \"v\": null}\n", name: "a.jsonl")
    let summary = try Converter(input: path, item: "a", outputRoot: directory, log: { _ in }).run()
    #expect(summary.rows == 2)
    #expect(try query("\(directory)/a/data.sqlite", "SELECT t, v FROM records") == ["1|0.5", "2|NULL"])
  }

  @Test(arguments: [
    ("a,b\n1,2\n3\n", "bad.csv:3: expected 2 fields, found 1"),
    ("a,b\n1,\"open\n", "bad.csv:2: a quoted field is never closed (truncated file?)"),
    ("", "bad.csv:1: the file is empty (a header row is needed)"),
    ("a,a\n1,2\n", "bad.csv:1: column 'a' appears twice"),
  ])
  func badInputNamesFileAndLineAndLeavesNothing(text: String, message: String) throws {
    let (directory, path) = try write(text, name: "bad.csv")
    // A previous good result stays untouched when the new conversion fails.
    try FileManager.default.createDirectory(atPath: "\(directory)/out/item", withIntermediateDirectories: true)
    try "old".write(toFile: "\(directory)/out/item/metadata.yaml", atomically: true, encoding: .utf8)
    #expect {
      try Converter(input: path, item: "item", outputRoot: "\(directory)/out", log: { _ in }).run()
    } throws: { "\($0)" == "\(directory)/\(message)" }
    #expect(try FileManager.default.contentsOfDirectory(atPath: "\(directory)/out") == ["item"])
    #expect(try String(contentsOfFile: "\(directory)/out/item/metadata.yaml", encoding: .utf8) == "old")
  }
}
