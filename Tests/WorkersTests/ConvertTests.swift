import CSQLite
import Foundation
import Testing
import Workers

@Suite struct ConvertTests {
  func write(_ text: String, name: String) throws -> (directory: String, path: String) {
    let directory = try scratch()
    let path = "\(directory)/\(name)"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return (directory, path)
  }

  func query(_ database: String, _ sql: String) -> [String] {
    var handle: OpaquePointer?
    sqlite3_open_v2(database, &handle, SQLITE_OPEN_READONLY, nil)
    defer { sqlite3_close(handle) }
    var statement: OpaquePointer?
    sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
    defer { sqlite3_finalize(statement) }
    var rows: [String] = []
    while sqlite3_step(statement) == SQLITE_ROW {
      rows.append((0..<sqlite3_column_count(statement)).map { column in
        sqlite3_column_type(statement, column) == SQLITE_NULL ? "NULL" : String(cString: sqlite3_column_text(statement, column))
      }.joined(separator: "|"))
    }
    return rows
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
    #expect(query(database, "SELECT id, name, score, note FROM records ORDER BY id") == [
      "1|Smith, Ann|3.5|NULL", "2|Bjørk|4|two\nlines \"quoted\"", "3|Li|x|ok",
    ])
    let metadata = try String(contentsOfFile: "\(directory)/deriv/sub-01/metadata.yaml", encoding: .utf8)
    var checksum = SHA256()
    checksum.update(Array(csv.utf8))
    #expect(metadata.contains("sha256: \(checksum.finalize())"))
    #expect(metadata.contains("rows: 3"))
    #expect(metadata.contains("- {name: \"score\", type: TEXT}"))
  }

  @Test func jsonLinesToo() throws {
    let (directory, path) = try write("{\"t\": 1, \"v\": 0.5}\n{\"t\": 2, \"v\": null}\n", name: "a.jsonl")
    let summary = try Converter(input: path, item: "a", outputRoot: directory, log: { _ in }).run()
    #expect(summary.rows == 2)
    #expect(query("\(directory)/a/data.sqlite", "SELECT t, v FROM records") == ["1|0.5", "2|NULL"])
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
