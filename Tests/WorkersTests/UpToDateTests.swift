import Foundation
import Report
import TestSizes
import Testing
import Workers

/// Every worker run twice does nothing the second time; a changed input or parameter
/// reruns it; --force reruns it. "Nothing" is checked on the output's inode: every write
/// renames a new file into place, so an untouched output keeps its inode.
@Suite(.tags(.medium)) struct UpToDateTests {
  final class Log: @unchecked Sendable {
    var lines: [String] = []
    func add(_ line: String) { lines.append(line) }
    var upToDate: Bool { lines.contains { $0.hasPrefix("up to date: ") } }
  }

  func inode(_ path: String) throws -> UInt64 {
    var info = stat()
    try #require(stat(path, &info) == 0, "\(path) is missing")
    return UInt64(info.st_ino)
  }

  /// A CSV of one item in `root`, with `rows` rows.
  func csv(_ root: String, rows: Int, offset: Double = 0) throws -> String {
    var text = "t,value,label\n"
    for index in 0..<rows { text += "\(index),\(Double(index) * 0.5 + offset),\(index % 2 == 0 ? "rest" : "task")\n" }
    let path = "\(root)/sub-01.csv"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  @Test func convertSkipsTheSameInputAndRerunsOnAChangeOrForce() throws {
    let root = try scratch()
    let input = try csv(root, rows: 50)
    let log = Log()
    var converter = Converter(input: input, item: "sub-01", outputRoot: "\(root)/deriv", log: log.add)
    #expect(try converter.runUnlessUpToDate() != nil)
    let table = "\(root)/deriv/sub-01/data.sqlite"
    let made = try inode(table)
    #expect(!log.upToDate)
    #expect(try converter.runUnlessUpToDate() == nil)
    #expect(log.lines.last?.hasPrefix("up to date: convert sub-01") == true)
    #expect(try inode(table) == made)
    _ = try csv(root, rows: 51)  // the data changed
    #expect(try converter.runUnlessUpToDate()?.rows == 51)
    converter.force = true
    let changed = try inode(table)
    #expect(try converter.runUnlessUpToDate()?.rows == 51)
    #expect(try inode(table) != changed)
  }

  @Test func analyzeAndGatherSkipTheSameDatabaseAndShard() throws {
    let root = try scratch()
    let input = try csv(root, rows: 90)
    _ = try Converter(input: input, item: "sub-01", outputRoot: root, log: { _ in }).run()
    let log = Log()
    for shard in 0..<3 { try ItemAnalysis.analyze(root: root, item: "sub-01", shard: shard, shards: 3, log: log.add) }
    try ItemAnalysis.gather(root: root, item: "sub-01", log: log.add)
    let shard = "\(root)/sub-01/analysis/shard-1-of-3.json"
    let summary = "\(root)/sub-01/summary.json"
    let (shardMade, summaryMade) = (try inode(shard), try inode(summary))
    #expect(!log.upToDate)
    let again = try ItemAnalysis.analyze(root: root, item: "sub-01", shard: 1, shards: 3, log: log.add)
    #expect(again.rows == 30)
    #expect(log.lines.last == "up to date: analyze sub-01 shard 1 of 3 (\(shard); --force recomputes)")
    #expect(try ItemAnalysis.gather(root: root, item: "sub-01", log: log.add).rows == 90)
    #expect(log.lines.last?.hasPrefix("up to date: gather sub-01") == true)
    #expect((try inode(shard), try inode(summary)) == (shardMade, summaryMade))
    // Another split is another parameter; --force recomputes the same one.
    try ItemAnalysis.analyze(root: root, item: "sub-01", shard: 0, shards: 1, log: log.add)
    #expect(log.lines.last?.hasPrefix("analyze: sub-01 shard 0 of 1") == true)
    try ItemAnalysis.analyze(root: root, item: "sub-01", shard: 1, shards: 3, force: true, log: log.add)
    #expect(try inode(shard) != shardMade)
    // A new database (convert again from changed data) reruns the item's chain.
    _ = try csv(root, rows: 90, offset: 1)
    _ = try Converter(input: input, item: "sub-01", outputRoot: root, log: { _ in }).run()
    log.lines = []
    try ItemAnalysis.analyze(root: root, item: "sub-01", shard: 0, shards: 1, log: log.add)
    let summaryAfter = try ItemAnalysis.gather(root: root, item: "sub-01", log: log.add)
    #expect(!log.upToDate)
    #expect(summaryAfter.columns.first { $0.name == "value" }?.min == 1)
  }

  @Test func downloadIsUpToDateByItsSHA256AndFetchesAChangedFile() throws {
    let source = try scratch() + "/e.bin"
    try Data("hello\n".utf8).write(to: URL(fileURLWithPath: source))
    let hello = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    let target = try scratch() + "/e.bin"
    let log = Log()
    func download(_ sum: String, force: Bool = false) throws -> Downloader.Outcome {
      var downloader = try Downloader(url: URL(fileURLWithPath: source), destination: target, expectedSHA256: sum, log: log.add)
      downloader.force = force
      return try downloader.run()
    }
    #expect(try download(hello).alreadyThere == false)
    #expect(try download(hello).alreadyThere == true)
    #expect(log.lines.last == "up to date: download \(target) (sha256 \(hello); --force downloads again)")
    #expect(try download(hello, force: true).alreadyThere == false)
    // The data set changed upstream and the spec's sha256 with it: fetched again.
    try Data("hello again\n".utf8).write(to: URL(fileURLWithPath: source))
    let changed = try UpToDate.sha256(ofFile: source)
    #expect(try download(changed).alreadyThere == false)
    #expect(try UpToDate.sha256(ofFile: target) == changed)
    // A sha256 nothing has: the download fails and the file there stays as it was.
    #expect(throws: WorkerError.self) { try download(String(repeating: "0", count: 64)) }
    #expect(try UpToDate.sha256(ofFile: target) == changed)
  }

  @Test func svdMapAndReduceSkipWhatIsStored() throws {
    let directory = try scratch()
    let log = Log()
    var map = SVDMap(nrow: 30, ncol: 20, seeds: Array(0...3), outputDirectory: "\(directory)/svd", task: 0, tasks: 1, log: log.add)
    #expect(try map.run() == (4, 0))
    #expect(try map.run() == (0, 4))
    #expect(log.lines.contains("up to date: svd-map task 0 of 1: all 4 seeds are stored (--force computes them again)"))
    map.force = true
    #expect(try map.run() == (4, 0))
    let out = "\(directory)/reduce.json"
    func reduce(exact: Bool = false, force: Bool = false) throws -> SVDReduce.Result {
      try SVDReduce.run(
        directory: "\(directory)/svd", nrow: 30, ncol: 20, expected: nil, exact: exact, method: .power, out: out, force: force, log: log.add)
    }
    let first = try reduce()
    let made = try inode(out)
    #expect(try reduce() == first)
    #expect(log.lines.last?.hasPrefix("up to date: svd-reduce \(out)") == true)
    #expect(try inode(out) == made)
    _ = try reduce(force: true)
    #expect(try inode(out) != made)
    map.seeds = Array(0...4)
    map.force = false
    #expect(try map.run() == (1, 4))  // a new seed changes the shard: the reduce reruns
    #expect(try reduce().blocks == 5)
  }

  @Test func visualizeAndPublishSkipTheSameInputs() throws {
    let root = try scratch()
    let input = try csv(root, rows: 40)
    _ = try Converter(input: input, item: "sub-01", outputRoot: root, log: { _ in }).run()
    try ItemAnalysis.analyze(root: root, item: "sub-01", shard: 0, shards: 1, log: { _ in })
    try ItemAnalysis.gather(root: root, item: "sub-01", log: { _ in })
    let log = Log()
    let figures = "\(root)/figures"
    try Visualize.run(svd: nil, data: root, to: figures, force: false, log: log.add)
    let made = try inode("\(figures)/figures.json")
    try Visualize.run(svd: nil, data: root, to: figures, force: false, log: log.add)
    #expect(log.lines.last?.hasPrefix("up to date: visualize \(figures)/figures.json") == true)
    #expect(try inode("\(figures)/figures.json") == made)
    try Visualize.run(svd: nil, data: root, to: figures, force: true, log: log.add)
    #expect(try inode("\(figures)/figures.json") != made)

    let plotly = "\(root)/plotly.min.js"
    try "/* plotly.js stand-in */".write(toFile: plotly, atomically: true, encoding: .utf8)
    var publish = PublishTask(title: "T", description: "", source: "s", figureDirectory: figures, out: "\(root)/public", log: log.add)
    publish.plotlyJS = plotly
    try publish.run()
    let page = try inode("\(root)/public/index.html")
    try publish.run()
    #expect(log.lines.last?.hasPrefix("up to date: publish \(root)/public/index.html") == true)
    #expect(try inode("\(root)/public/index.html") == page)
    // Everything in public/ is published: the record stays beside it.
    #expect(try FileManager.default.contentsOfDirectory(atPath: "\(root)/public").sorted() == ["index.html", "plotly.min.js"])
    #expect(FileManager.default.fileExists(atPath: "\(root)/.public.made-from.json"))
    publish.title = "Another title"
    try publish.run()
    #expect(try inode("\(root)/public/index.html") != page)
    #expect(try String(contentsOfFile: "\(root)/public/index.html", encoding: .utf8).contains("Another title"))
  }

  @Test func svdMapRefusesToGuessItsDirectory() throws {
    #expect { try SVDMap.outputDirectory(out: nil, dataDeriv: nil) } throws: {
      "\($0)" == "svd-map: give --out DIR or set DATA_DERIV (the shard files need a directory)"
    }
    #expect(try SVDMap.outputDirectory(out: nil, dataDeriv: "/d") == "/d/svd")
    #expect(try SVDMap.outputDirectory(out: "/o", dataDeriv: "/d") == "/o")
  }
}
